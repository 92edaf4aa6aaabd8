import t from 'tap'
import { buildGateway } from './helper.js'
import { errorPageFor, oauthErrorResponse } from '../src/http/error-responses.js'
import { StoreFullError, StoreUnavailableError } from '../src/store/store-errors.js'

const config = {
  proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }],
  clients: [{ client_id: 'known-app', client_secret_env: 'KNOWN_APP_SECRET', redirect_uris: ['http://127.0.0.1/cb'] }]
}
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

t.test('an unknown client and a wrong secret get the same answer: nothing tells whether a client exists', async t => {
  const app = await buildGateway(t, { config, env: { KNOWN_APP_SECRET: 'right-secret' } })
  const ask = async (authorization: string | undefined, body = 'grant_type=refresh_token&refresh_token=x.y'): Promise<{ status: number, body: unknown, challenge: unknown }> => {
    const res = await app.inject({ method: 'POST', url: '/oauth/token', headers: { ...FORM, ...(authorization === undefined ? {} : { authorization }) }, payload: body })
    return { status: res.statusCode, body: res.json(), challenge: res.headers['www-authenticate'] }
  }
  const unknown = await ask(basic('no-such-app', 'whatever'))
  const wrong = await ask(basic('known-app', 'wrong-secret'))
  t.equal(unknown.status, 401)
  t.same(unknown, wrong, 'same status, body and challenge')
  t.same(unknown.body, { error: 'invalid_client', error_description: 'client authentication failed' })
  // Without a secret: an unknown id and a confidential client named without its secret.
  t.same(await ask(undefined, 'grant_type=refresh_token&refresh_token=x.y&client_id=no-such-app'),
    await ask(undefined, 'grant_type=refresh_token&refresh_token=x.y&client_id=known-app'))
})

t.test('Fastify\'s own refusals keep their status: 415 unsupported_media_type; a malformed body stays invalid_request', async t => {
  const app = await buildGateway(t, { config, env: { KNOWN_APP_SECRET: 'right-secret' } })
  const cases = [
    { url: '/oauth/token', type: 'application/xml', payload: '<grant_type>refresh_token</grant_type>', status: 415, error: 'unsupported_media_type' },
    { url: '/oauth/register', type: 'application/json', payload: '{"redirect_uris": [', status: 400, error: 'invalid_request' }
  ]
  for (const c of cases) {
    const res = await app.inject({ method: 'POST', url: c.url, headers: { 'content-type': c.type }, payload: c.payload })
    t.same([res.statusCode, res.json().error], [c.status, c.error], `${c.type} to ${c.url}`)
  }
})

t.test('a rate limit keeps its 429 with temporarily_unavailable, not invalid_request', async t => {
  const app = await buildGateway(t, { config, env: { KNOWN_APP_SECRET: 'right-secret' } })
  let res
  for (let i = 0; i < 61; i++) {
    res = await app.inject({ method: 'POST', url: '/oauth/register', remoteAddress: '127.0.0.9', payload: { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' } })
  }
  t.equal(res?.statusCode, 429)
  t.equal(res?.json().error, 'temporarily_unavailable')
  t.ok(res?.headers['retry-after'], 'with Retry-After')
})

t.test('the OAuth mapper: store errors are 503 with Retry-After, anything unexpected a generic 500 with the detail logged', async t => {
  const full = oauthErrorResponse(new StoreFullError('anonymous'))
  t.match(full, { status: 503, headers: { 'retry-after': '60' }, body: { error: 'temporarily_unavailable' }, logged: { level: 'warn', message: 'store_full_anonymous' } })
  t.match(oauthErrorResponse(new StoreUnavailableError()), { status: 503, headers: { 'retry-after': '5' } })
  const crash = oauthErrorResponse(new TypeError('secret internals at /src/x.ts'))
  t.same(crash.body, { error: 'server_error', error_description: 'Internal error' })
  t.match(crash.logged, { level: 'error', cause: { message: /secret internals/ } })
  const page = errorPageFor(new StoreUnavailableError())
  t.match(page.page, { statusCode: 503, title: 'Try again shortly', headers: { 'retry-after': '5' } })
})
