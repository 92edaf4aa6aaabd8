// The generated keys and Redis password must survive `helm upgrade`: the chart reads them back
// with `lookup`. `helm template` without a cluster never looks anything up, so this serves a
// minimal fake Kubernetes API on loopback and renders with --dry-run=server against it.
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const chart = path.join(root, 'chart')
const helmBin = execFileSync(path.join(root, 'scripts', 'helm.sh'), { encoding: 'utf8', timeout: 300_000 }).trim()
const ns = 'mcp'
const release = 'my-gateway'

type Manifest = Record<string, any>

// Discovery for every kind the chart renders, so helm can map its manifests.
const apiGroups: Record<string, [string, string][]> = {
  v1: [
    ['secrets', 'Secret'],
    ['configmaps', 'ConfigMap'],
    ['services', 'Service'],
    ['serviceaccounts', 'ServiceAccount'],
    ['pods', 'Pod'],
  ],
  'apps/v1': [
    ['deployments', 'Deployment'],
    ['statefulsets', 'StatefulSet'],
  ],
  'policy/v1': [['poddisruptionbudgets', 'PodDisruptionBudget']],
  'networking.k8s.io/v1': [
    ['ingresses', 'Ingress'],
    ['networkpolicies', 'NetworkPolicy'],
  ],
  'autoscaling/v2': [['horizontalpodautoscalers', 'HorizontalPodAutoscaler']],
  'monitoring.coreos.com/v1': [['servicemonitors', 'ServiceMonitor']],
}

/** Secrets "in the cluster", by name; owned by the release, as a previous install left them. */
const secrets = new Map<string, Record<string, string>>()

function fakeApi (): Server {
  return createServer((req, res) => {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    const p = new URL(req.url ?? '/', 'http://x').pathname
    const resources = (gv: string) => ({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: gv,
      resources: apiGroups[gv]!.map(([name, kind]) => ({
        name,
        singularName: kind.toLowerCase(),
        namespaced: true,
        kind,
        verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'],
      })),
    })
    if (p === '/version') return send(200, { major: '1', minor: '30', gitVersion: 'v1.30.0', platform: 'linux/amd64' })
    if (p === '/api') return send(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] })
    if (p === '/api/v1') return send(200, resources('v1'))
    if (p === '/apis') {
      const groups = Object.keys(apiGroups)
        .filter((gv) => gv.includes('/'))
        .map((gv) => {
          const [name, version] = gv.split('/')
          return { name, versions: [{ groupVersion: gv, version }], preferredVersion: { groupVersion: gv, version } }
        })
      return send(200, { kind: 'APIGroupList', apiVersion: 'v1', groups })
    }
    if (p.startsWith('/apis/') && apiGroups[p.slice(6)]) return send(200, resources(p.slice(6)))
    const m = new RegExp(`^/api/v1/namespaces/${ns}/secrets/([^/]+)$`).exec(p)
    if (req.method === 'GET' && m && secrets.has(m[1]!)) {
      return send(200, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: m[1],
          namespace: ns,
          labels: { 'app.kubernetes.io/managed-by': 'Helm' },
          annotations: { 'meta.helm.sh/release-name': release, 'meta.helm.sh/release-namespace': ns },
        },
        data: secrets.get(m[1]!),
      })
    }
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 })
  })
}

const server = fakeApi()
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
const { port } = server.address() as { port: number }

const home = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-helm-'))
t.teardown(() => rmSync(home, { recursive: true, force: true }))
const kubeconfig = path.join(home, 'kubeconfig')
writeFileSync(
  kubeconfig,
  [
    'apiVersion: v1',
    'kind: Config',
    'clusters: [{name: fake, cluster: {server: "http://127.0.0.1:' + port + '"}}]',
    'users: [{name: fake, user: {token: fake}}]',
    `contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: ${ns}}}]`,
    'current-context: fake',
    '',
  ].join('\n')
)

/** helm template --dry-run=server, asynchronously: the fake API runs in this process. */
function renderAgainstCluster (args: string[] = []): Promise<Manifest[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      helmBin,
      ['template', release, chart, '-n', ns, '--dry-run=server', '--disable-openapi-validation', '--kubeconfig', kubeconfig, ...args],
      { env: { PATH: process.env.PATH, HOME: home }, timeout: 60_000 }
    )
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`helm template --dry-run=server failed: ${err}`))
      resolve(parseAllDocuments(out).map((d) => d.toJS() as Manifest).filter((m) => m && m.kind))
    })
  })
}

const secretOf = (ms: Manifest[], name: string) => ms.find((m) => m.kind === 'Secret' && m.metadata.name === name)!.data
const b64 = (s: string) => Buffer.from(s).toString('base64')

t.test('first install: keys and Redis password are generated', async (t) => {
  secrets.clear()
  const ms = await renderAgainstCluster()
  const keys = secretOf(ms, 'my-gateway-mcp-gateway-keys')
  t.match(Buffer.from(keys['jwt-signing-key'], 'base64').toString(), /^-----BEGIN EC PRIVATE KEY-----/)
  t.equal(Buffer.from(Buffer.from(keys['encryption-key'], 'base64').toString(), 'base64').length, 32)
  t.match(Buffer.from(secretOf(ms, 'my-gateway-mcp-gateway-redis')['redis-password'], 'base64').toString(), /^[A-Za-z0-9]{32}$/)
})

t.test('upgrade: the keys and the Redis password in the cluster are kept', async (t) => {
  secrets.clear()
  const keys = { 'jwt-signing-key': b64('-----BEGIN EC PRIVATE KEY-----\nexisting\n'), 'encryption-key': b64('existing-encryption-key') }
  const redis = { 'redis-password': b64('existing-redis-password') }
  secrets.set('my-gateway-mcp-gateway-keys', keys)
  secrets.set('my-gateway-mcp-gateway-redis', redis)

  const first = await renderAgainstCluster()
  t.same(secretOf(first, 'my-gateway-mcp-gateway-keys'), keys)
  t.same(secretOf(first, 'my-gateway-mcp-gateway-redis'), redis)

  // Kept values make the pod template stable: an upgrade with unchanged values restarts nothing.
  const second = await renderAgainstCluster(['--set', 'replicaCount=2'])
  const ann = (ms: Manifest[], kind: string) => ms.find((m) => m.kind === kind)!.spec.template.metadata.annotations
  t.same(ann(second, 'Deployment'), ann(first, 'Deployment'))
  t.same(ann(second, 'StatefulSet'), ann(first, 'StatefulSet'))

  // An explicit password still wins over the stored one.
  const explicit = await renderAgainstCluster(['--set', 'redis.auth.password=chosen'])
  t.equal(Buffer.from(secretOf(explicit, 'my-gateway-mcp-gateway-redis')['redis-password'], 'base64').toString(), 'chosen')
})
