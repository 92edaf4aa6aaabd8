import type { UpstreamCredentials } from './upstream-credentials.js'

/** upstream_auth header: a static header from the environment, the same for every caller. */
export function staticHeader (header: { name: string, value: string }): UpstreamCredentials {
  const { name, value } = header
  return { apply: (_request, headers) => { headers[name] = value } }
}
