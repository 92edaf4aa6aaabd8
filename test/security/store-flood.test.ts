import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildGateway, startRedis } from '../helper.js'
import { TestBrowser } from '../fixtures/browser.js'
import {
  REDIRECT, VERIFIER, authorizeUrl, registerClient, startAuthorizationServer, tokenRequest, type AuthorizationSetup
} from '../fixtures/authorization.js'

// Unauthenticated requests must not fill the store: every consent page writes a record, every
// registration a client that lives 90 days. These floods come from addresses an attacker
// controls (app.inject's remoteAddress), with client ids that cost nothing.

const proxies = [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }]
const REGISTRATION = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }

/** Path and query of an authorization request for `clientId` (for app.inject). */
function authorizePath (setup: AuthorizationSetup, clientId: string): string {
  const url = new URL(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }))
  return url.pathname + url.search
}

interface Answer { status: number, html: boolean, retryAfter?: string, body: string }

async function openAuthorize (app: FastifyInstance, path: string, ip: string): Promise<Answer> {
  const res = await app.inject({ method: 'GET', url: path, remoteAddress: ip })
  return {
    status: res.statusCode,
    html: String(res.headers['content-type']).startsWith('text/html'),
    retryAfter: res.headers['retry-after'] as string | undefined,
    body: res.body
  }
}

const tally = (answers: Answer[]): Record<number, number> =>
  answers.reduce<Record<number, number>>((acc, a) => ({ ...acc, [a.status]: (acc[a.status] ?? 0) + 1 }), {})

t.test('an authorize flood from one address with a fresh client id each time is throttled', async t => {
  const clients = Array.from({ length: 140 }, (_, i) => ({ client_id: `flood-${i}`, redirect_uris: [REDIRECT] }))
  const setup = await startAuthorizationServer(t, { config: { proxies, clients } })
  const answers: Answer[] = []
  for (const { client_id: id } of clients) answers.push(await openAuthorize(setup.gateway, authorizePath(setup, id), '127.0.0.9'))
  const counts = tally(answers)
  t.ok((counts[200] ?? 0) <= 120, `at most 120 consent pages a minute from one address (got ${counts[200] ?? 0})`)
  const refused = answers.filter(a => a.status === 429)
  t.ok(refused.length >= 20, 'the rest are refused')
  t.ok(refused.every(a => a.html && a.retryAfter !== undefined), 'as an HTML page with Retry-After (a browser navigated here)')
  t.notOk(answers.some(a => a.status >= 500), 'nothing crashed')
  t.equal((await openAuthorize(setup.gateway, authorizePath(setup, 'flood-0'), '127.0.0.10')).status, 200, 'another address still gets its consent page')
})

t.test('one client looping on authorize is held back before it spends its neighbours\' share', async t => {
  const clients = [{ client_id: 'looping', redirect_uris: [REDIRECT] }, { client_id: 'neighbour', redirect_uris: [REDIRECT] }]
  const setup = await startAuthorizationServer(t, { config: { proxies, clients } })
  const statuses: number[] = []
  for (let i = 0; i < 31; i++) statuses.push((await openAuthorize(setup.gateway, authorizePath(setup, 'looping'), '127.0.0.13')).status)
  t.same(tally(statuses.map(status => ({ status, html: true, body: '' }))), { 200: 30, 429: 1 }, '30 a minute per address and client')
  t.equal((await openAuthorize(setup.gateway, authorizePath(setup, 'neighbour'), '127.0.0.13')).status, 200, 'another client behind the same address still gets through')
})

t.test('consent pages left pending are capped per address', async t => {
  const setup = await startAuthorizationServer(t, { config: { proxies }, env: { PENDING_AUTHORIZATIONS_PER_IP: '5' } })
  const clientId = (await registerClient(setup.base)).body.client_id as string
  const path = authorizePath(setup, clientId)
  const answers: Answer[] = []
  for (let i = 0; i < 8; i++) answers.push(await openAuthorize(setup.gateway, path, '127.0.0.11'))
  t.same(answers.map(a => a.status), [200, 200, 200, 200, 200, 429, 429, 429], 'five pending consent pages, then 429')
  const last = answers[7]
  t.ok(last.html, 'an HTML page')
  t.match(last.body, /Too many sign-ins/)
  t.ok(Number(last.retryAfter) > 0 && Number(last.retryAfter) <= 600, 'Retry-After within the 10-minute window')
  t.equal((await openAuthorize(setup.gateway, path, '127.0.0.12')).status, 200, 'another address is not affected')
  // IPv6 addresses count per /64: one subscriber's addresses share the cap.
  const v6: number[] = []
  for (let i = 1; i <= 6; i++) v6.push((await openAuthorize(setup.gateway, path, `2001:db8:1:2::${i}`)).status)
  t.same(v6, [200, 200, 200, 200, 200, 429], 'fresh addresses within one /64 share the cap')
})

t.test('registrations per address per day are capped, across replicas sharing Redis', async t => {
  const redis = await startRedis(t)
  const env = { REDIS_URL: redis.url, REGISTRATIONS_PER_IP_PER_DAY: '3' }
  const a = await buildGateway(t, { config: { proxies }, env })
  const b = await buildGateway(t, { config: { proxies }, env })
  const register = async (app: FastifyInstance, ip: string): Promise<{ status: number, body: Record<string, unknown>, retryAfter?: string }> => {
    const res = await app.inject({ method: 'POST', url: '/oauth/register', remoteAddress: ip, payload: REGISTRATION })
    return { status: res.statusCode, body: res.json(), retryAfter: res.headers['retry-after'] as string | undefined }
  }
  const statuses = [await register(a, '127.0.0.21'), await register(b, '127.0.0.21'), await register(a, '127.0.0.21')].map(r => r.status)
  t.same(statuses, [201, 201, 201])
  for (const app of [a, b]) {
    const over = await register(app, '127.0.0.21')
    t.equal(over.status, 429, 'the fourth of the day is refused, whichever replica takes it')
    t.equal(over.body.error, 'temporarily_unavailable', 'RFC 6749 code, status 429 (slow_down is the device flow polling code)')
    t.type(over.body.error_description, 'string')
    t.ok(Number(over.retryAfter) > 23 * 3600 && Number(over.retryAfter) <= 24 * 3600, `Retry-After until the day is over (${String(over.retryAfter)})`)
  }
  t.equal((await register(b, '127.0.0.22')).status, 201, 'another address still registers')
  const bad = await b.inject({ method: 'POST', url: '/oauth/register', remoteAddress: '127.0.0.23', payload: { redirect_uris: ['http://evil.example/cb'] } })
  t.equal(bad.statusCode, 400, 'a malformed registration is answered as before...')
  for (let i = 0; i < 3; i++) t.equal((await register(a, '127.0.0.23')).status, 201, '...and does not count')
})

/** A victim who logged in through the provider: a browser with a session and an approval, and a refresh token. */
async function victimLogsIn (t: Test, setup: AuthorizationSetup): Promise<{ browser: TestBrowser, clientId: string, refreshToken: string }> {
  const clientId = (await registerClient(setup.base)).body.client_id as string
  const browser = new TestBrowser()
  const back = await browser.authorize(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }), REDIRECT)
  const tokens = await tokenRequest(setup.base, { grant_type: 'authorization_code', code: back.searchParams.get('code') as string, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: clientId })
  t.equal(tokens.status, 200, 'the victim is logged in')
  return { browser, clientId, refreshToken: tokens.body.refresh_token as string }
}

/** The victim is unharmed: their refresh token rotates, and their browser goes straight back to the client with a code. */
async function victimUnharmed (t: Test, setup: AuthorizationSetup, victim: { browser: TestBrowser, clientId: string, refreshToken: string }): Promise<string> {
  const refreshed = await tokenRequest(setup.base, { grant_type: 'refresh_token', refresh_token: victim.refreshToken, client_id: victim.clientId })
  t.equal(refreshed.status, 200, 'the victim\'s refresh family is still there')
  const logins = setup.idp.logins()
  const hop = await victim.browser.request(authorizeUrl(setup.base, { client_id: victim.clientId, resource: `${setup.base}/calc/mcp`, state: 'again' }))
  t.equal(hop.status, 302)
  t.match(hop.location, /^http:\/\/127\.0\.0\.1:7\/callback\?code=/, 'the victim\'s session and approval still skip the consent page and the login')
  t.equal(setup.idp.logins(), logins, 'no provider login')
  return new URL(hop.location as string).searchParams.get('code') as string
}

t.test('memory store: a flood of consent pages from many addresses gets 503 and evicts nobody', async t => {
  const setup = await startAuthorizationServer(t, { config: { proxies }, env: { MEMORY_STORE_MAX_SHORT_LIVED: '40' } })
  const victim = await victimLogsIn(t, setup)
  const path = authorizePath(setup, victim.clientId)
  const answers: Answer[] = []
  for (let i = 1; i <= 60; i++) answers.push(await openAuthorize(setup.gateway, path, `127.0.1.${i}`))
  const counts = tally(answers)
  t.ok((counts[200] ?? 0) < 20, `the flood got few consent pages (${counts[200] ?? 0})`)
  const busy = answers.filter(a => a.status === 503)
  t.ok(busy.length > 40, 'the rest were told the gateway is busy')
  t.ok(busy.every(a => a.html && a.retryAfter !== undefined), 'as an HTML page with Retry-After')
  t.notOk(answers.some(a => a.status === 500), 'nothing crashed')
  const code = await victimUnharmed(t, setup, victim)
  const redeemed = await tokenRequest(setup.base, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: victim.clientId })
  t.equal(redeemed.status, 200, 'and the victim\'s new code is redeemed')
})

t.test('memory store: a flood of registrations fills only its own bound, then gets 503', async t => {
  const setup = await startAuthorizationServer(t, { config: { proxies }, env: { MEMORY_STORE_MAX_LONG_LIVED: '20' } })
  const victim = await victimLogsIn(t, setup)
  const statuses: number[] = []
  let busy: { error?: string, retryAfter?: string } = {}
  for (let i = 1; i <= 30; i++) {
    const res = await setup.gateway.inject({ method: 'POST', url: '/oauth/register', remoteAddress: `127.0.2.${i}`, payload: REGISTRATION })
    statuses.push(res.statusCode)
    if (res.statusCode === 503) busy = { error: res.json().error, retryAfter: res.headers['retry-after'] as string | undefined }
  }
  t.ok(statuses.filter(s => s === 201).length < 20, 'registrations stop at the bound')
  t.ok(statuses.slice(-5).every(s => s === 503), 'then 503...')
  t.equal(busy.error, 'temporarily_unavailable', '...with OAuth error JSON')
  t.ok(busy.retryAfter, '...and Retry-After')
  await victimUnharmed(t, setup, victim)
})
