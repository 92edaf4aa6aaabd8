// Behind the chart's Ingress the gateway sees the client's address only in X-Forwarded-For, where
// the client may have written anything before the entry the Ingress appended. A client that forges
// a fresh first entry on every request must still hit the per-address rate limit.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import type { FastifyInstance } from 'fastify'
import { buildGateway } from '../helper.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** TRUST_PROXY as `helm template` renders it with the chart's defaults. */
function chartTrustProxy (): string {
  const helm = execFileSync(path.join(root, 'scripts', 'helm.sh'), { encoding: 'utf8', timeout: 300_000 }).trim()
  const out = execFileSync(helm, ['template', 'gw', path.join(root, 'chart')], { encoding: 'utf8', timeout: 60_000 })
  const deployment = parseAllDocuments(out).map(d => d.toJS()).find(m => m?.kind === 'Deployment')
  const env = deployment.spec.template.spec.containers[0].env as Array<{ name: string, value?: string }>
  const value = env.find(e => e.name === 'TRUST_PROXY')?.value
  if (value === undefined) throw new Error('the chart sets no TRUST_PROXY')
  return value
}

const CLIENT = { redirect_uris: ['http://127.0.0.1:7777/callback'], token_endpoint_auth_method: 'none' }

/** A registration as it reaches the pod: the Ingress (the socket peer) appended `realIp`. */
async function register (app: FastifyInstance, forged: string | null, realIp: string): Promise<number> {
  const xff = forged === null ? realIp : `${forged}, ${realIp}`
  return (await app.inject({ method: 'POST', url: '/oauth/register', headers: { 'x-forwarded-for': xff }, payload: CLIENT })).statusCode
}

/** Registers with a new forged first entry each time until refused; returns how many passed. */
async function flood (app: FastifyInstance, realIp: string, max: number): Promise<number> {
  for (let i = 0; i < max; i++) {
    if (await register(app, `10.${i >> 8 & 255}.${i & 255}.1`, realIp) === 429) return i
  }
  return max
}

t.test('as the chart deploys it, a client forging X-Forwarded-For cannot dodge the registration rate limit', async t => {
  const trustProxy = chartTrustProxy()
  const app = await buildGateway(t, { env: { TRUST_PROXY: trustProxy } })
  const first = await app.inject({ method: 'POST', url: '/oauth/register', headers: { 'x-forwarded-for': '198.51.100.9' }, payload: CLIENT })
  const limit = Number(first.headers['x-ratelimit-limit'])
  t.ok(limit > 0, `registrations are rate-limited (${limit} per window)`)

  const passed = await flood(app, '203.0.113.7', limit + 5)
  t.ok(passed <= limit, `refused after at most ${limit} registrations (${passed} passed, TRUST_PROXY=${trustProxy})`)
  t.equal(await register(app, '1.2.3.4', '203.0.113.7'), 429, 'the same forged entry is refused too')
  t.equal(await register(app, null, '203.0.113.8'), 201, 'another client behind the same Ingress is still served')
})

t.test('TRUST_PROXY=true takes the forged entry: the attack the hop count stops', async t => {
  const app = await buildGateway(t, { env: { TRUST_PROXY: 'true' } })
  const first = await app.inject({ method: 'POST', url: '/oauth/register', payload: CLIENT })
  const limit = Number(first.headers['x-ratelimit-limit'])
  t.equal(await flood(app, '203.0.113.7', limit + 5), limit + 5, 'every forged entry got its own bucket')
})
