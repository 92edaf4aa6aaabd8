import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildGateway } from './helper.js'
import { TestBrowser, type Hop } from './fixtures/browser.js'
import { REDIRECT, authorizeUrl, registerClient, startAuthorizationServer, type AuthorizationSetup } from './fixtures/authorization.js'

type Assertions = Pick<typeof t, 'equal' | 'match'>

const config = {
  proxies: [
    { pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' },
    { pattern: '/team/mcp', target_url: 'http://127.0.0.1:9/mcp', allowed_domains: ['team.example'] },
    { pattern: '/write/mcp', target_url: 'http://127.0.0.1:9/mcp', scopes: ['mcp', 'write'] }
  ]
}

let setup: AuthorizationSetup
let clientId: string
t.before(async () => {
  setup = await startAuthorizationServer(t, { config, env: { ALLOWED_EMAIL_DOMAINS: 'example.com,team.example' } })
  clientId = (await registerClient(setup.base)).body.client_id as string
})

const calc = (): string => `${setup.base}/calc/mcp`
const errorOf = (hop: Hop): URLSearchParams => new URL(hop.location as string).searchParams

function isErrorPage (t: Assertions, hop: Hop, text: RegExp): void {
  t.equal(hop.status, 400)
  t.equal(hop.location, undefined, 'never a redirect')
  t.match(hop.body, text)
}

t.test('authorization server metadata: both documents, every field, issuer byte-equal to BASE_URL', async t => {
  const a = await (await fetch(`${setup.base}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>
  const b = await (await fetch(`${setup.base}/.well-known/openid-configuration`)).json() as Record<string, unknown>
  t.same(a, b)
  t.equal(a.issuer, setup.base)
  t.match(a, {
    authorization_endpoint: `${setup.base}/oauth/authorize`,
    token_endpoint: `${setup.base}/oauth/token`,
    registration_endpoint: `${setup.base}/oauth/register`,
    revocation_endpoint: `${setup.base}/oauth/revoke`,
    introspection_endpoint: `${setup.base}/oauth/introspect`,
    code_challenge_methods_supported: ['S256'],
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    client_id_metadata_document_supported: true,
    authorization_response_iss_parameter_supported: true
  })
  t.ok((a.token_endpoint_auth_methods_supported as string[]).includes('none'))
  t.same(a.scopes_supported, ['mcp', 'write', 'offline_access'])
  t.equal((await fetch(`${setup.base}/.well-known/unknown`)).status, 404, 'other well-known paths still 404')
})

t.test('DCR: 201 for a public client; http redirect URIs off loopback are refused; secrets are stored hashed', async t => {
  const ok = await registerClient(setup.base, { application_type: 'native', logo_uri: 'https://x.example/l.png' })
  t.equal(ok.status, 201)
  t.equal(ok.body.token_endpoint_auth_method, 'none')
  t.notOk(ok.body.client_secret)
  const bad = await registerClient(setup.base, { redirect_uris: ['http://app.example.com/cb'] })
  t.equal(bad.status, 400)
  t.equal(bad.body.error, 'invalid_redirect_uri')
  const confidential = await registerClient(setup.base, { token_endpoint_auth_method: 'client_secret_basic' })
  const secret = confidential.body.client_secret as string
  t.ok(secret)
  const stored = await setup.gateway.store.get(`client:${confidential.body.client_id as string}`)
  t.notOk(stored?.includes(secret), 'the raw secret is not in the store')
  const legacy = await fetch(`${setup.base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }) })
  t.equal(legacy.status, 201, 'legacy /register')
})

t.test('unknown client, redirect URI mismatch and open-redirect attempts get an error page, never a redirect', async t => {
  const browser = new TestBrowser()
  isErrorPage(t, await browser.request(authorizeUrl(setup.base, { client_id: 'nobody', resource: calc() })), /not registered/)
  isErrorPage(t, await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: calc(), redirect_uri: 'http://127.0.0.1:7/other' })), /redirect address/)
  const evil = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: calc(), redirect_uri: 'https://evil.example/cb' }))
  isErrorPage(t, evil, /will not send you there/)
  t.match(evil.body, /<!DOCTYPE html>/)
  const page = await fetch(authorizeUrl(setup.base, { client_id: clientId, resource: calc(), redirect_uri: 'https://evil.example/cb' }))
  t.equal(page.headers.get('x-frame-options'), 'DENY')
  t.match(page.headers.get('content-security-policy'), /frame-ancestors 'none'/)
})

t.test('PKCE missing or plain, resource naming no route: errors go back to the client with state and iss', async t => {
  const browser = new TestBrowser()
  const missing = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: calc(), code_challenge: undefined, code_challenge_method: undefined }))
  t.equal(missing.status, 302)
  t.equal(errorOf(missing).get('error'), 'invalid_request')
  t.equal(errorOf(missing).get('state'), 'st-1')
  t.equal(errorOf(missing).get('iss'), setup.base)
  const plain = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: calc(), code_challenge_method: 'plain' }))
  t.equal(errorOf(plain).get('error'), 'invalid_request')
  const nowhere = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/nope/mcp` }))
  t.equal(errorOf(nowhere).get('error'), 'invalid_target')
})

t.test('the consent page shows the client, the route, the scopes and a localhost warning; deny sends access_denied', async t => {
  const browser = new TestBrowser()
  const page = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: calc() }))
  t.equal(page.status, 200)
  t.match(page.body, /Rules client/)
  t.match(page.body, /calc\/mcp/)
  t.match(page.body, /<code>mcp<\/code>/)
  t.match(page.body, /localhost/)
  const denied = await browser.submitConsent(page, 'deny')
  t.equal(errorOf(denied).get('error'), 'access_denied')
  t.equal(errorOf(denied).get('state'), 'st-1')
  t.equal(errorOf(denied).get('iss'), setup.base)
})

t.test('the consent form is single use and bound to the browser that opened it', async t => {
  const browser = new TestBrowser()
  const page = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: calc() }))
  const stranger = new TestBrowser()
  isErrorPage(t, await stranger.submitConsent(page, 'approve'), /not opened in this browser/)
  const again = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: calc() }))
  const forged = again.body.replace(/name="csrf_token" value="[^"]*"/, 'name="csrf_token" value="forged"')
  isErrorPage(t, await browser.submitConsent({ ...again, body: forged }, 'approve'), /Request expired/)
})

t.test('allow-lists: a denied email and a denied domain go back as access_denied; unverified emails never pass', async t => {
  for (const [user, resource] of [
    [{ email: 'eve@elsewhere.org' }, calc()],
    [{ email: 'bob@example.com' }, `${setup.base}/team/mcp`],
    [{ email: 'ana@example.com', emailVerified: false }, calc()]
  ] as const) {
    setup.idp.loginAs(user)
    const back = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: clientId, resource }), REDIRECT)
    t.equal(back.searchParams.get('error'), 'access_denied', user.email)
    t.equal(back.searchParams.get('state'), 'st-1')
    t.equal(back.searchParams.get('iss'), setup.base)
    t.notOk(back.searchParams.get('code'))
  }
  setup.idp.loginAs({ email: 'carol@team.example' })
  const allowed = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/team/mcp` }), REDIRECT)
  t.ok(allowed.searchParams.get('code'), 'the route\'s domain passes')
  setup.idp.loginAs({ email: 'ana@example.com' })
})

t.test('the callback refuses a missing state and a replayed one', async t => {
  const browser = new TestBrowser()
  isErrorPage(t, await browser.request(`${setup.base}/oauth/callback?code=x`), /no state/)
  isErrorPage(t, await browser.request(`${setup.base}/oauth/callback?state=a&state=b`), /malformed answer/)
  const page = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: calc() }))
  const atCallback = await browser.follow(await browser.submitConsent(page, 'approve'), u => u.startsWith(`${setup.base}/oauth/callback`))
  const callback = atCallback.location as string
  const first = await browser.request(callback)
  t.match(first.location, /^http:\/\/127\.0\.0\.1:7\/callback\?code=/)
  isErrorPage(t, await browser.request(callback), /already completed or has expired/)
})

t.test('step-up: a returning user is asked only for the scopes not approved yet', async t => {
  const browser = new TestBrowser()
  const write = `${setup.base}/write/mcp`
  const first = await browser.authorize(authorizeUrl(setup.base, { client_id: clientId, resource: write, scope: 'mcp' }), REDIRECT)
  t.ok(first.searchParams.get('code'))
  const page = await browser.request(authorizeUrl(setup.base, { client_id: clientId, resource: write, scope: 'mcp write' }))
  t.equal(page.status, 200)
  t.match(page.body, /Allow more access/)
  t.match(page.body, /New permissions requested<\/dt>\n<dd><code>write<\/code><\/dd>\n<dt>Already allowed<\/dt>\n<dd><code>mcp<\/code>/)
  const approved = await browser.follow(await browser.submitConsent(page, 'approve'), u => u.startsWith(REDIRECT))
  t.match(approved.location, /code=/, 'the session carries the login: no second provider login needed')
})

t.test('metadata documents: private address, redirect, oversize and mismatched client_id are refused on a page, without saying why', async t => {
  const docs = createServer((req, res) => {
    const self = `http://127.0.0.1:${(docs.address() as AddressInfo).port}${req.url ?? ''}`
    if (req.url === '/moved.json') {
      res.writeHead(302, { location: '/client.json' }).end()
      return
    }
    res.setHeader('content-type', 'application/json')
    const doc = { client_id: req.url === '/other.json' ? 'http://127.0.0.1:1/else.json' : self, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: req.url === '/big.json' ? 'x'.repeat(10) : 'Doc', padding: req.url === '/big.json' ? 'x'.repeat(6000) : '' }
    res.end(JSON.stringify(doc))
  })
  await new Promise<void>(resolve => docs.listen(0, '127.0.0.1', resolve))
  t.teardown(() => docs.close())
  const origin = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`
  const browser = new TestBrowser()
  for (const [id, why] of [
    ['https://10.1.2.3/client.json', /The client metadata document could not be fetched\./],
    [`${origin}/moved.json`, /could not be fetched/],
    [`${origin}/big.json`, /could not be fetched/],
    [`${origin}/other.json`, /The client metadata document is not valid\./]
  ] as const) {
    isErrorPage(t, await browser.request(authorizeUrl(setup.base, { client_id: id, resource: calc() })), why)
  }

  // Without CIMD_ALLOW_LOOPBACK a loopback document is refused too.
  const strict = await buildGateway(t, { config, env: { OAUTH_PROVIDER: 'oidc', OAUTH_OIDC_ISSUER: setup.idp.issuer, OAUTH_OIDC_CLIENT_ID: 'x', OAUTH_OIDC_CLIENT_SECRET: 'y' } })
  const res = await strict.inject({ url: authorizeUrl('', { client_id: `${origin}/client.json`, resource: 'http://gateway.test/calc/mcp' }) })
  t.equal(res.statusCode, 400)
  t.match(res.body, /client_id must be an https URL/, 'an http client_id is no metadata document URL then')
})
