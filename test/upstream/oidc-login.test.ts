// Issue 14, item 1: OIDC Core §5.4 lets a provider answering response_type=code give the email
// and profile claims from userinfo only; oidc-provider does so by default. Logins through such a
// provider must work, cost one userinfo request, and trust userinfo only for the ID token's user.
import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildGateway, freePort } from '../helper.js'
import { TestBrowser } from '../fixtures/browser.js'
import { REDIRECT, VERIFIER, authorizeUrl, registerClient, tokenRequest } from '../fixtures/authorization.js'
import { startOidcIdp, type IdpOptions, type OidcIdp } from '../fixtures/oidc-provider.js'
import { discoverOidc } from '../../src/upstream/oidc.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }

interface Setup { base: string, idp: OidcIdp, clientId: string, logLines: string[] }

async function start (t: Test, idpOptions: IdpOptions = {}): Promise<Setup> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const idp = await startOidcIdp(base, idpOptions)
  t.teardown(idp.close)
  const logLines: string[] = []
  await buildGateway(t, {
    listen: true,
    port,
    config,
    logLines,
    env: { OAUTH_PROVIDER: 'oidc', OAUTH_OIDC_ISSUER: idp.issuer, OAUTH_OIDC_CLIENT_ID: idp.clientId, OAUTH_OIDC_CLIENT_SECRET: idp.clientSecret }
  })
  const clientId = (await registerClient(base)).body.client_id as string
  return { base, idp, clientId, logLines }
}

/** Logs in through the gateway and the provider; the client's redirect back. */
async function login (setup: Setup): Promise<URLSearchParams> {
  const back = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: setup.clientId, resource: `${setup.base}/calc/mcp` }), REDIRECT)
  return back.searchParams
}

/** The email in the access token the code is redeemed for. */
async function emailOfToken (setup: Setup, code: string): Promise<unknown> {
  const issued = await tokenRequest(setup.base, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: setup.clientId, resource: `${setup.base}/calc/mcp` })
  const payload = (issued.body.access_token as string).split('.')[1]
  return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { email?: unknown }).email
}

t.test('a provider with its spec defaults (claims from userinfo) logs the user in, with one userinfo request per login', async t => {
  const setup = await start(t)
  setup.idp.loginAs({ email: 'ana@example.com', name: 'Ana' })
  const back = await login(setup)
  t.equal(back.get('error'), null, back.get('error_description') ?? '')
  t.equal(await emailOfToken(setup, back.get('code') as string), 'ana@example.com', 'the email userinfo gave')
  t.equal(setup.idp.userinfoCalls(), 1)
})

t.test('a provider that puts the claims in the ID token costs no userinfo request', async t => {
  const setup = await start(t, { claimsInIdToken: true })
  setup.idp.loginAs({ email: 'ana@example.com' })
  const back = await login(setup)
  t.equal(await emailOfToken(setup, back.get('code') as string), 'ana@example.com')
  t.equal(setup.idp.userinfoCalls(), 0)
})

t.test('userinfo about another subject is refused, and the log holds neither the email nor a token', async t => {
  const setup = await start(t)
  setup.idp.loginAs({ email: 'mallory@example.com' })
  setup.idp.userinfoSubject('user-ana@example.com')
  const back = await login(setup)
  t.equal(back.get('error'), 'server_error')
  t.notOk(back.get('code'))
  t.equal(setup.idp.userinfoCalls(), 1)
  const log = setup.logLines.join('\n')
  t.match(setup.logLines.find(line => line.includes('upstream login failed')), /userinfo: .*sub/, 'the log says what was wrong')
  t.notMatch(log, /mallory|ana@example/, 'no email in the log')
  t.notMatch(log, /eyJ/, 'no ID token in the log')
})

t.test('an answer naming another issuer (RFC 9207: an IdP mix-up) is refused', async t => {
  const setup = await start(t)
  setup.idp.loginAs({ email: 'ana@example.com' })
  const browser = new TestBrowser()
  const callback = `${setup.base}/oauth/callback`
  let hop = await browser.follow(await browser.request(authorizeUrl(setup.base, { client_id: setup.clientId, resource: `${setup.base}/calc/mcp` })), url => url.startsWith(callback))
  hop = await browser.follow(await browser.submitConsent(hop, 'approve'), url => url.startsWith(callback))
  const answer = new URL(hop.location as string)
  t.equal(answer.searchParams.get('iss'), setup.idp.issuer, 'the provider names itself')
  answer.searchParams.set('iss', 'https://evil.example')
  const back = new URL((await browser.request(answer.href)).location as string)
  t.equal(back.searchParams.get('error'), 'server_error')
  t.notOk(back.searchParams.get('code'))
  t.match(setup.logLines.find(line => line.includes('upstream login failed')), /code exchange: .*iss/)
})

t.test('an unverified email from userinfo is refused', async t => {
  const setup = await start(t)
  setup.idp.loginAs({ email: 'ana@example.com', emailVerified: false })
  const back = await login(setup)
  t.equal(back.get('error'), 'access_denied')
  t.match(back.get('error_description'), /not verified/)
})

/** A loopback server answering every request with `body`. */
async function documentServer (t: Test, body: (origin: string) => string): Promise<string> {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(body(origin))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => { server.close() })
  return origin
}

const discoveryDocument = (issuer: string, overrides: Record<string, unknown> = {}): string => JSON.stringify({
  issuer,
  authorization_endpoint: `${issuer}/auth`,
  token_endpoint: `${issuer}/token`,
  jwks_uri: `${issuer}/jwks`,
  ...overrides
})

t.test('discovery: http only on loopback, for the issuer and every endpoint; the issuer must match; answers are bounded', async t => {
  await t.rejects(discoverOidc('http://idp.example'), /must be an https URL/)
  const plainEndpoint = await documentServer(t, origin => discoveryDocument(origin, { token_endpoint: 'http://idp.example/token' }))
  await t.rejects(discoverOidc(plainEndpoint), /token_endpoint is not an https URL/)
  const otherIssuer = await documentServer(t, () => discoveryDocument('https://idp.example'))
  await t.rejects(discoverOidc(otherIssuer), /issuer/)
  const huge = await documentServer(t, origin => discoveryDocument(origin, { padding: 'x'.repeat(300 * 1024) }))
  await t.rejects(discoverOidc(huge), /more than 262144 bytes/)
  const fine = await documentServer(t, origin => discoveryDocument(origin))
  t.equal((await discoverOidc(fine)).token_endpoint, `${fine}/token`)
})

t.test('an OIDC issuer over plain http elsewhere stops start-up, naming the variable', async t => {
  await t.rejects(buildGateway(t, { config, env: { OAUTH_PROVIDER: 'oidc', OAUTH_OIDC_ISSUER: 'http://idp.example', OAUTH_OIDC_CLIENT_ID: 'gw', OAUTH_OIDC_CLIENT_SECRET: 's' } }), /OAUTH_OIDC_ISSUER.*https/)
})
