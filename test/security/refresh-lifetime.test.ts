// Issue 9, medium: rotating a refresh token must not keep its family alive forever. A client
// refreshes well inside the sliding TTL, again and again, while the clock advances (Date.now is
// advanced, as weeks passing would; the app runs in this process); past
// REFRESH_TOKEN_MAX_LIFETIME the family is refused, and no stored TTL outlives it.
import t from 'tap'
import { Redis } from 'ioredis'
import { startRedis } from '../helper.js'
import { TestBrowser } from '../fixtures/browser.js'
import {
  REDIRECT, VERIFIER, authorizeUrl, registerClient, startAuthorizationServer, tokenRequest, type AuthorizationSetup
} from '../fixtures/authorization.js'

const DAY = 86_400
const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }

let setup: AuthorizationSetup
let clientId: string
let redis: Redis

t.before(async () => {
  const server = await startRedis(t)
  redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  // The defaults: 30 days sliding, 90 days at most.
  setup = await startAuthorizationServer(t, { config, env: { REDIS_URL: server.url } })
  clientId = (await registerClient(setup.base)).body.client_id as string
})

/** Date.now, `days` ahead of the real clock until the test ends. */
function advancedClock (t: { teardown: (fn: () => void) => void }): (days: number) => void {
  const real = Date.now.bind(Date)
  let offset = 0
  Date.now = () => real() + offset
  t.teardown(() => { Date.now = real })
  return days => { offset = days * DAY * 1000 }
}

async function refresh (refreshToken: string): Promise<{ status: number, body: Record<string, unknown> }> {
  return await tokenRequest(setup.base, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId })
}

/** Seconds the store keeps the family of this refresh token. */
async function storedTtl (refreshToken: string): Promise<number> {
  return await redis.ttl(`mcpgw:family:${refreshToken.split('.')[0]}`)
}

async function login (): Promise<Record<string, unknown>> {
  const back = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }), REDIRECT)
  return (await tokenRequest(setup.base, {
    grant_type: 'authorization_code', code: back.searchParams.get('code') as string, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: clientId
  })).body
}

t.test('rotating every 20 days cannot keep a family past 90 days', async t => {
  let refreshToken = (await login()).refresh_token as string
  t.ok(await storedTtl(refreshToken) <= 30 * DAY)

  const setDay = advancedClock(t)
  for (const day of [20, 40, 60, 80]) {
    setDay(day)
    const next = await refresh(refreshToken)
    t.equal(next.status, 200, `day ${day}: inside the lifetime the family rotates`)
    refreshToken = next.body.refresh_token as string
    const ttl = await storedTtl(refreshToken)
    t.ok(ttl > 0 && ttl <= Math.min(30, 90 - day) * DAY, `day ${day}: stored for ${ttl} s, never past day 90`)
  }
  setDay(91)
  const late = await refresh(refreshToken)
  t.equal(late.status, 400, 'day 91')
  t.equal(late.body.error, 'invalid_grant')
  t.notOk(late.body.access_token)
})

t.test('a family stored by the previous version (no creation time, no identity) is refused, not kept forever', async t => {
  const refreshToken = (await login()).refresh_token as string
  const key = `mcpgw:family:${refreshToken.split('.')[0]}`
  const { createdAt, emailVerified, hostedDomain, ...old } = JSON.parse(await redis.get(key) as string) as Record<string, unknown>
  t.ok(createdAt !== undefined && emailVerified !== undefined, 'the new fields are there to remove')
  t.equal(hostedDomain, undefined)
  await redis.set(key, JSON.stringify(old), 'EX', 30 * DAY)
  const refused = await refresh(refreshToken)
  t.equal(refused.status, 400)
  t.equal(refused.body.error, 'invalid_grant')
  t.match(refused.body.error_description, /authorize again/)
  t.equal((await refresh(refreshToken)).body.error, 'invalid_grant', 'and it stays refused')
})
