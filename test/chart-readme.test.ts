// The chart README's parameter tables and examples must match values.yaml and chart/examples,
// so the documentation cannot drift from the chart.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const chart = path.join(root, 'chart')
const readme = readFileSync(path.join(chart, 'README.md'), 'utf8')
const values = parse(readFileSync(path.join(chart, 'values.yaml'), 'utf8'))

// Rows of the parameter tables: | `key` | description | default |
const rows = new Map<string, string>()
const duplicates: string[] = []
for (const line of readme.split('\n')) {
  const m = /^\| `([A-Za-z0-9_.]+)` \| .* \| (.*) \|$/.exec(line)
  if (!m) continue
  // Route keys (`pattern`, ...) are documented in their own table, not as values paths.
  if (!m[1]!.includes('.') && !(m[1]! in values)) continue
  if (rows.has(m[1]!)) duplicates.push(m[1]!)
  rows.set(m[1]!, m[2]!)
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** Leaf keys of values.yaml; a documented map (e.g. `resources`) covers everything under it. */
function leaves (v: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(v).flatMap(([k, child]) => {
    const key = prefix + k
    if (rows.has(key) || !isMap(child) || Object.keys(child).length === 0) return [key]
    return leaves(child, `${key}.`)
  })
}

function lookup (key: string): { found: boolean; value?: unknown } {
  let cur: unknown = values
  for (const part of key.split('.')) {
    if (!isMap(cur) || !(part in cur)) return { found: false }
    cur = cur[part]
  }
  return { found: true, value: cur }
}

t.same(duplicates, [], 'no parameter is documented twice')

t.test('every value has a row', async (t) => {
  for (const key of leaves(values)) t.ok(rows.has(key), `README documents ${key}`)
})

t.test('every row is a value, with its default', async (t) => {
  for (const [key, cell] of rows) {
    const { found, value } = lookup(key)
    if (!t.ok(found, `${key} exists in values.yaml`)) continue
    const shown = /`([^`]*)`/.exec(cell)?.[1]
    if (Array.isArray(value) && value.length === 0) t.equal(shown, '[]', `${key} default`)
    else if (isMap(value) && Object.keys(value).length === 0) t.equal(shown, '{}', `${key} default`)
    else if (Array.isArray(value) || isMap(value)) {
      t.ok(shown !== undefined || /See values\.yaml/.test(cell), `${key} default is shown or referred to`)
      if (shown !== undefined) t.same(JSON.parse(shown), value, `${key} default`)
    } else if (typeof value === 'string') {
      t.ok(shown === value || shown === JSON.stringify(value), `${key} default: README ${shown}, values ${JSON.stringify(value)}`)
    } else {
      t.equal(shown, String(value), `${key} default`)
    }
  }
})

t.test('the seed parameters keep their defaults', async (t) => {
  // From the go-mcp-gateway chart README (the image repository is ours by design).
  const seed: Record<string, unknown> = {
    replicaCount: 1,
    'image.tag': '',
    'image.pullPolicy': 'IfNotPresent',
    'config.baseUrl': 'http://localhost:8080',
    'config.port': 8080,
    'config.allowedOrigins': '*',
    'config.oauth.google.clientId': '',
    'config.oauth.google.clientSecret': '',
    'config.oauth.google.redirectUri': 'http://localhost:8080/oauth/callback',
    'config.oauth.google.scopes': 'openid,profile,email',
    'service.type': 'ClusterIP',
    'service.port': 8080,
    'service.annotations': {},
    'ingress.enabled': false,
    'ingress.className': '',
    'ingress.annotations': {},
    'ingress.tls': [],
    'redis.enabled': true,
    'redis.external.enabled': false,
    'redis.external.host': '',
    'redis.external.port': 6379,
    'redis.external.password': '',
    'redis.auth.enabled': true,
    'redis.auth.password': '',
    'redis.master.persistence.enabled': true,
    'redis.master.persistence.size': '1Gi',
    'redis.master.persistence.storageClass': '',
    'autoscaling.enabled': false,
    'autoscaling.minReplicas': 1,
    'autoscaling.maxReplicas': 10,
    'autoscaling.targetCPUUtilizationPercentage': 80,
  }
  for (const [key, want] of Object.entries(seed)) t.same(lookup(key).value, want, key)
  for (const key of ['config.proxies', 'ingress.hosts', 'redis.resources']) t.ok(lookup(key).found, key)
  t.equal(lookup('image.repository').value, 'ghcr.io/mcp-gateway/mcp-gateway')
})

t.test('every example file is in the README verbatim', async (t) => {
  const files = readdirSync(path.join(chart, 'examples')).filter((f) => f.endsWith('.yaml'))
  t.ok(files.length >= 5)
  for (const f of files) {
    // Drop the leading comment that says where the example comes from.
    const body = readFileSync(path.join(chart, 'examples', f), 'utf8').replace(/^(#.*\n)+/, '')
    t.ok(readme.includes('```yaml\n' + body + '```'), `${f} appears in README.md`)
  }
})
