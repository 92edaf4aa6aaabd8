import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from '../helper.js'
import { TestBrowser, type Hop } from '../fixtures/browser.js'
import { authorizeUrl, REDIRECT, registerClient, startAuthorizationServer, startReplica, tokenRequest, VERIFIER, type AuthorizationSetup } from '../fixtures/authorization.js'

/**
 * The provider login is bound to the browser that approved the consent page: a provider URL or
 * a callback URL carried to another browser completes nothing there.
 */
const ROUTE = { pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }
const config = { proxies: [ROUTE] }
const VICTIM = { email: 'victim@example.com' }
const ATTACKER = { email: 'mallory@evil.test' }

/** A gateway on its own Redis, so a test can look for what the gateway kept. */
async function gatewayWithRedis (t: Test, env: Record<string, string> = {}): Promise<{ setup: AuthorizationSetup, redis: RedisServer }> {
  const redis = await startRedis(t)
  return { setup: await startAuthorizationServer(t, { config, env: { REDIS_URL: redis.url, ...env } }), redis }
}

const isCallback = (base: string) => (url: string): boolean => url.startsWith(`${base}/oauth/callback`)
const atClient = (url: string): boolean => url.startsWith(REDIRECT)

/** The attacker's client, and the consent page approved in the attacker's browser: the hop that leaves for the provider. */
async function approveConsent (t: Test, setup: AuthorizationSetup, browser: TestBrowser): Promise<{ toProvider: Hop, clientId: string }> {
  const clientId = (await registerClient(setup.base, { client_name: 'Innocent tool' })).body.client_id as string
  const page = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }))
  t.equal(page.status, 200, 'the consent page')
  const toProvider = await browser.submitConsent(page, 'approve')
  t.ok(toProvider.location?.startsWith(setup.idp.issuer), 'the approval redirects to the provider')
  return { toProvider, clientId }
}

function gatewayCookies (browser: TestBrowser): string[] {
  return [...(browser.jar.get('127.0.0.1')?.keys() ?? [])]
}

async function upstreamTokenKeys (redis: RedisServer): Promise<string[]> {
  const client = new Redis(redis.url)
  try { return await client.keys('*upstream:*') } finally { client.disconnect() }
}

t.test('confused deputy: the provider URL from the attacker\'s approval, opened by a victim, yields no code', async t => {
  const { setup, redis } = await gatewayWithRedis(t)
  const attacker = new TestBrowser()
  const { toProvider, clientId } = await approveConsent(t, setup, attacker)

  // The victim follows the link: the provider signs them in and sends them to the gateway.
  setup.idp.loginAs(VICTIM)
  const victim = new TestBrowser()
  const end = await victim.follow(await victim.request(toProvider.location as string), atClient)
  t.equal(setup.idp.logins(), 1, 'the victim did log in at the provider')
  t.notOk(end.location?.startsWith(REDIRECT), 'no redirect to the attacker\'s client')
  t.equal(end.status, 400, 'an error page instead')
  t.match(end.body, /started in another browser/)
  t.notOk(gatewayCookies(victim).some(name => name.includes('mcpgw-session')), 'no gateway session in the victim\'s browser')
  t.same(await upstreamTokenKeys(redis), [], 'the victim\'s provider tokens are not kept')

  // Nor did the victim's browser get an approval for the attacker's client: it asks again.
  const again = await victim.request(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }))
  t.equal(again.status, 200)
  t.match(again.body, /name="csrf_token"/, 'the consent page again, not a silent code')
})

t.test('login CSRF: the attacker\'s callback URL opened by a victim gives the victim no session', async t => {
  // The attacker is on no allow-list: the gateway must not hand out their session either way.
  const { setup, redis } = await gatewayWithRedis(t, { ALLOWED_EMAILS: VICTIM.email })
  const attacker = new TestBrowser()
  const { toProvider } = await approveConsent(t, setup, attacker)
  setup.idp.loginAs(ATTACKER)
  // The attacker logs in at the provider and stops before the gateway's callback.
  const callback = await attacker.follow(await attacker.request(toProvider.location as string), isCallback(setup.base))
  t.ok(callback.location !== undefined && isCallback(setup.base)(callback.location), 'the attacker holds a callback URL')

  const victim = new TestBrowser()
  const landed = await victim.request(callback.location as string)
  t.equal(landed.status, 400, 'an error page')
  t.notOk(landed.location?.startsWith(REDIRECT), 'no code for anyone')
  t.same(gatewayCookies(victim).filter(name => name.includes('mcpgw-session') || name.includes('mcpgw-user')), [], 'no session or user cookie set in the victim\'s browser')
  t.same(await upstreamTokenKeys(redis), [], 'no provider tokens stored for the attacker')
})

t.test('a user the allow-lists refuse gets neither a gateway session nor stored provider tokens', async t => {
  const { setup, redis } = await gatewayWithRedis(t, { ALLOWED_EMAILS: VICTIM.email })
  const browser = new TestBrowser()
  const clientId = (await registerClient(setup.base)).body.client_id as string
  setup.idp.loginAs(ATTACKER)
  const back = await browser.authorize(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }), REDIRECT)
  t.equal(back.searchParams.get('error'), 'access_denied')
  t.same(gatewayCookies(browser).filter(name => name.includes('mcpgw-session')), [], 'no session cookie')
  t.same(await upstreamTokenKeys(redis), [], 'no provider tokens stored')
  // The next attempt shows the consent page again instead of riding a session.
  const again = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }))
  t.match(again.body, /name="csrf_token"/, 'the consent page, not a silent answer')
})

t.test('the honest flow: approval on one replica, the provider\'s return on another, in one browser', async t => {
  const { setup } = await gatewayWithRedis(t)
  const replica = await startReplica(t, setup, config)
  setup.idp.loginAs(VICTIM)
  const browser = new TestBrowser()
  const { toProvider, clientId } = await approveConsent(t, setup, browser)
  t.ok(gatewayCookies(browser).some(name => name.startsWith('mcpgw-login-')), 'the login cookie is set at consent')
  browser.route = target => target.origin === setup.base ? new URL(target.pathname + target.search, replica.origin) : target
  const back = new URL((await browser.follow(await browser.request(toProvider.location as string), atClient)).location as string)
  t.notOk(gatewayCookies(browser).some(name => name.startsWith('mcpgw-login-')), 'and cleared at the callback')
  const token = await tokenRequest(setup.base, { grant_type: 'authorization_code', code: back.searchParams.get('code') as string, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: clientId })
  t.equal(token.status, 200, 'the code redeems for tokens')
  t.ok(token.body.refresh_token)
})
