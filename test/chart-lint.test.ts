// `helm lint --strict` of the chart with its defaults, every seed README example and the seed's
// CLI install flags: what CI must keep green.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const chart = path.join(root, 'chart')
const helmBin = execFileSync(path.join(root, 'scripts', 'helm.sh'), {
  encoding: 'utf8',
  timeout: 300_000,
}).trim()

function lint (args: string[]) {
  const r = spawnSync(helmBin, ['lint', '--strict', chart, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` }
}

const examples = readdirSync(path.join(chart, 'examples')).filter((f) => f.endsWith('.yaml')).sort()

const seedExamples = ['cert-manager-tls.yaml', 'external-redis.yaml', 'high-availability.yaml', 'multiple-routes.yaml', 'production.yaml']
t.same(examples.filter((f) => seedExamples.includes(f)), seedExamples, 'every seed README example is kept')
t.same(
  examples.filter((f) => !seedExamples.includes(f)),
  ['redis-external-cluster.yaml', 'redis-external-sentinel.yaml', 'redis-replication.yaml'],
  'and the newer Redis modes have theirs'
)

const cases: Record<string, string[]> = {
  defaults: [],
  'seed CLI install': [
    '--set', 'config.oauth.google.clientId=YOUR_CLIENT_ID',
    '--set', 'config.oauth.google.clientSecret=YOUR_CLIENT_SECRET',
    '--set', 'config.oauth.google.redirectUri=http://localhost:8080/oauth/callback',
  ],
  'everything opt-in turned on': [
    '--set', 'networkPolicy.enabled=true',
    '--set', 'serviceMonitor.enabled=true',
    '--set', 'ingress.enabled=true',
    '--set', 'autoscaling.enabled=true',
    '--set', 'config.oauth.provider=oidc',
    '--set', 'config.oauth.oidc.issuer=https://id.example.com',
  ],
  'replicated Redis with every option': [
    '--set', 'redis.architecture=replication',
    '--set', 'redis.replication.podAntiAffinity=hard',
    '--set', 'networkPolicy.enabled=true',
    '--set', 'redis.auth.enabled=false',
  ],
  'no Redis': ['--set', 'redis.enabled=false'],
  ...Object.fromEntries(examples.map((f) => [`example ${f}`, ['-f', path.join(chart, 'examples', f)]])),
}

for (const [name, args] of Object.entries(cases)) {
  t.test(name, async (t) => {
    const r = lint(args)
    t.ok(r.ok, r.out)
    t.match(r.out, /1 chart\(s\) linted, 0 chart\(s\) failed/)
  })
}

t.test('lint rejects values the schema forbids', async (t) => {
  const r = lint(['--set', 'replicaCnt=2'])
  t.notOk(r.ok)
  t.match(r.out, /replicaCnt/)
})
