import t from 'tap'
import { buildGateway } from './helper.js'
import { CHALLENGE, REDIRECT, authorizeUrl } from './fixtures/authorization.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }

/** Only the first name=value of each Set-Cookie line, as a browser would send them back. */
const cookieHeader = (setCookie: string | string[] | undefined): string => [setCookie ?? []].flat().map(c => c.split(';')[0]).join('; ')

t.test('with an https BASE_URL and Google: __Host- cookies, then Google with offline access, prompt=consent and the hd hint', async t => {
  const app = await buildGateway(t, {
    config,
    env: { BASE_URL: 'https://mcp.example.com', OAUTH_GOOGLE_CLIENT_ID: 'gw.apps.googleusercontent.com', OAUTH_GOOGLE_CLIENT_SECRET: 's', ALLOWED_EMAIL_DOMAINS: 'example.com' }
  })
  const registered = await app.inject({ method: 'POST', url: '/oauth/register', payload: { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: 'Google test' } })
  const clientId = registered.json().client_id as string

  const page = await app.inject({ url: authorizeUrl('', { client_id: clientId, resource: 'https://mcp.example.com/calc/mcp' }) })
  t.equal(page.statusCode, 200)
  const setCookie = String(page.headers['set-cookie'])
  t.match(setCookie, /^__Host-mcpgw-browser=[^;]+; Max-Age=86400; Path=\/; HttpOnly; Secure; SameSite=Strict$/)
  t.match(page.headers['content-security-policy'], /form-action 'self' https:\/\/accounts\.google\.com http:\/\/127\.0\.0\.1:7/)

  const field = (name: string): string => (new RegExp(`name="${name}" value="([^"]*)"`).exec(page.body) as RegExpExecArray)[1]
  const consent = await app.inject({
    method: 'POST',
    url: '/oauth/consent',
    headers: { cookie: cookieHeader(page.headers['set-cookie']) },
    payload: { csrf_token: field('csrf_token'), transaction_id: field('transaction_id'), decision: 'approve' }
  })
  t.equal(consent.statusCode, 302)
  const google = new URL(consent.headers.location as string)
  t.equal(google.origin + google.pathname, 'https://accounts.google.com/o/oauth2/v2/auth')
  t.match(Object.fromEntries(google.searchParams), {
    client_id: 'gw.apps.googleusercontent.com',
    redirect_uri: 'https://mcp.example.com/oauth/callback',
    scope: 'openid profile email',
    access_type: 'offline',
    prompt: 'consent',
    hd: 'example.com',
    code_challenge_method: 'S256'
  })
  t.not(google.searchParams.get('code_challenge'), CHALLENGE, 'the gateway\'s own PKCE, not the client\'s')
  t.ok(google.searchParams.get('state'))
  t.ok(google.searchParams.get('nonce'))
})

t.test('without Google credentials the gateway serves its documents and explains on the login page', async t => {
  const app = await buildGateway(t, { config })
  t.equal((await app.inject('/.well-known/oauth-authorization-server')).statusCode, 200)
  const registered = await app.inject({ method: 'POST', url: '/oauth/register', payload: { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' } })
  const page = await app.inject({ url: authorizeUrl('', { client_id: registered.json().client_id, resource: 'http://gateway.test/calc/mcp' }) })
  t.equal(page.statusCode, 503)
  t.match(page.body, /no identity provider configured/)
})
