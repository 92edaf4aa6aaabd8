import t, { type Test } from 'tap'
import { buildAuthorizationRedirect, validateAuthorizeRequest } from '../../src/oauth/authorize-request.js'
import { ErrorPage, OAuthError } from '../../src/oauth/errors.js'
import { StoreUnavailableError } from '../../src/store/store-errors.js'
import type { Params } from '../../src/oauth/params.js'
import { s256 } from '../../src/oauth/pkce.js'

const ISSUER = 'https://gw.example.com'
const calc = { pattern: '/calc/mcp', resourceUrl: 'https://gw.example.com/calc/mcp' }
const files = { pattern: '/files/mcp', resourceUrl: 'https://gw.example.com/files/mcp' }
const client = {
  client_id: 'client-1',
  client_name: 'Test App',
  redirect_uris: ['https://app.example.com/cb?tenant=a', 'http://127.0.0.1/callback']
}
const ctx = {
  issuer: ISSUER,
  findClient: async (id: string) => id === client.client_id ? client : undefined,
  routes: [calc, files],
  supportedScopes: ['mcp:tools', 'mcp:resources'],
  defaultScopes: ['mcp:tools']
}
const challenge = s256('a'.repeat(43))
const good: Params = {
  response_type: 'code',
  client_id: 'client-1',
  redirect_uri: 'https://app.example.com/cb?tenant=a',
  code_challenge: challenge,
  code_challenge_method: 'S256',
  resource: 'https://gw.example.com/files/mcp',
  scope: 'mcp:tools mcp:resources',
  state: 'xyz 123'
}

/** The error the client would read from the redirect. */
async function redirectedError (t: Test, query: Params): Promise<URLSearchParams> {
  const outcome = await validateAuthorizeRequest(query, ctx)
  if (outcome.ok) throw new Error('expected an error redirect')
  const url = new URL(outcome.redirectTo)
  t.equal(url.origin + url.pathname, 'https://app.example.com/cb', 'sent back to the client')
  t.equal(url.searchParams.get('tenant'), 'a', 'the redirect URI keeps its own query')
  t.equal(url.searchParams.get('iss'), ISSUER, 'iss (RFC 9207)')
  t.equal(outcome.error.code, url.searchParams.get('error'))
  return url.searchParams
}

t.test('a valid request comes back validated', async t => {
  const outcome = await validateAuthorizeRequest(good, ctx)
  t.same(outcome, {
    ok: true,
    request: {
      client,
      redirectUri: 'https://app.example.com/cb?tenant=a',
      codeChallenge: challenge,
      route: files,
      scopes: ['mcp:tools', 'mcp:resources'],
      state: 'xyz 123'
    }
  })
  const defaults = await validateAuthorizeRequest({ ...good, scope: undefined, state: undefined, resource: 'HTTPS://GW.EXAMPLE.COM/calc/mcp/' }, ctx)
  t.ok(defaults.ok)
  if (defaults.ok) {
    t.same(defaults.request.scopes, ['mcp:tools'], 'no scope: the default ones')
    t.equal(defaults.request.state, undefined)
    t.equal(defaults.request.route, calc)
  }
  // RFC 6749 §3.3: scopes the gateway does not know are left out, never a failed login.
  const habitual = await validateAuthorizeRequest({ ...good, scope: 'openid mcp:tools email offline_access admin' }, ctx)
  t.same(habitual.ok && habitual.request.scopes, ['mcp:tools'], 'openid, email, offline_access, admin left out')
  const onlyUnknown = await validateAuthorizeRequest({ ...good, scope: 'openid profile', resource: 'https://gw.example.com/calc/mcp' }, ctx)
  t.same(onlyUnknown.ok && onlyUnknown.request.scopes, ['mcp:tools'], 'nothing known asked: the default ones')
  const loopback = await validateAuthorizeRequest({ ...good, redirect_uri: 'http://127.0.0.1:49152/callback' }, ctx)
  t.ok(loopback.ok, 'loopback redirect on another port')
  if (loopback.ok) t.equal(loopback.request.redirectUri, 'http://127.0.0.1:49152/callback', 'bound to the port asked for')
})

t.test('client or redirect URI in doubt: an error page, never a redirect', async t => {
  const cases: Array<[Params, string, RegExp]> = [
    [{ ...good, client_id: undefined }, 'Invalid request', /client_id is missing/],
    [{ ...good, client_id: 'nobody' }, 'Unknown application', /not registered/],
    [{ ...good, client_id: ['client-1', 'client-1'] }, 'Invalid request', /client_id must not be repeated/],
    [{ ...good, redirect_uri: undefined }, 'Invalid redirect address', /redirect_uri is missing/],
    [{ ...good, redirect_uri: 'https://evil.example/cb' }, 'Invalid redirect address', /not one this application registered/],
    [{ ...good, redirect_uri: 'https://app.example.com/cb?tenant=a&x=1' }, 'Invalid redirect address', /not one/],
    [{ ...good, redirect_uri: 'https://app.example.com/cb' }, 'Invalid redirect address', /not one/],
    [{ ...good, redirect_uri: ['https://app.example.com/cb?tenant=a', 'https://evil.example/cb'] }, 'Invalid redirect address', /must not be repeated/],
    // Even when everything after it is wrong too, the page comes first.
    [{ client_id: 'nobody', redirect_uri: 'https://evil.example/cb', response_type: 'token' }, 'Unknown application', /not registered/]
  ]
  for (const [query, title, message] of cases) {
    await t.rejects(validateAuthorizeRequest(query, ctx), { name: 'ErrorPage', title, message, statusCode: 400 }, JSON.stringify(query).slice(0, 120))
  }
})

t.test('a failed client lookup is a page; a store outage stays a 503', async t => {
  const cimdFailure = { ...ctx, findClient: async () => { throw new OAuthError('invalid_client', 'client metadata document answered HTTP 404') } }
  const err = await validateAuthorizeRequest(good, cimdFailure).catch(e => e)
  t.ok(err instanceof ErrorPage)
  t.match(err, { title: 'Unknown application', message: 'client metadata document answered HTTP 404' })

  const outage = { ...ctx, findClient: async () => { throw new StoreUnavailableError() } }
  await t.rejects(validateAuthorizeRequest(good, outage), { name: 'StoreUnavailableError', statusCode: 503 })
})

t.test('later errors go back to the client with state and iss', async t => {
  const cases: Array<[Params, string, RegExp]> = [
    [{ ...good, response_type: undefined }, 'invalid_request', /response_type is required/],
    [{ ...good, response_type: 'token' }, 'unsupported_response_type', /must be code, not token/],
    [{ ...good, response_type: ['code', 'code'] }, 'invalid_request', /response_type must not be repeated/],
    [{ ...good, code_challenge: undefined }, 'invalid_request', /code_challenge is required/],
    [{ ...good, code_challenge_method: 'plain' }, 'invalid_request', /must be S256/],
    [{ ...good, code_challenge_method: undefined }, 'invalid_request', /code_challenge_method is required/],
    [{ ...good, resource: 'https://gw.example.com/other/mcp' }, 'invalid_target', /not an MCP server of this gateway/],
    [{ ...good, resource: undefined }, 'invalid_target', /resource is required/],
    [{ ...good, resource: [calc.resourceUrl, files.resourceUrl] }, 'invalid_target', /exactly one resource/]
  ]
  for (const [query, error, description] of cases) {
    const params = await redirectedError(t, query)
    t.equal(params.get('error'), error, `${error}: ${JSON.stringify(query).slice(0, 80)}`)
    t.match(params.get('error_description'), description)
    t.equal(params.get('state'), 'xyz 123', 'state unchanged')
  }
})

t.test('PKCE is checked before resource, resource before scope', async t => {
  const params = await redirectedError(t, { ...good, code_challenge_method: 'plain', resource: 'https://nope.example/', scope: 'admin' })
  t.equal(params.get('error_description'), 'code_challenge_method must be S256')
  const next = await redirectedError(t, { ...good, resource: 'https://nope.example/', scope: 'admin' })
  t.equal(next.get('error'), 'invalid_target')
})

t.test('a bad state is reported without being echoed', async t => {
  const repeated = await redirectedError(t, { ...good, state: ['a', 'b'] })
  t.equal(repeated.get('error_description'), 'state must not be repeated')
  t.equal(repeated.has('state'), false)
  const long = await redirectedError(t, { ...good, state: 's'.repeat(4097) })
  t.match(long.get('error_description'), /state longer than 4096/)
  t.equal(long.has('state'), false)
})

t.test('buildAuthorizationRedirect', async t => {
  t.equal(buildAuthorizationRedirect('https://app.example.com/cb', { code: 'c1', state: 'a b&c', iss: ISSUER }),
    'https://app.example.com/cb?code=c1&state=a+b%26c&iss=https%3A%2F%2Fgw.example.com')
  t.equal(buildAuthorizationRedirect('https://app.example.com/cb?x=1', { code: 'c1', state: undefined }),
    'https://app.example.com/cb?x=1&code=c1', 'existing query kept, undefined dropped')
  t.equal(buildAuthorizationRedirect('https://app.example.com/cb?', { code: 'c1' }), 'https://app.example.com/cb?code=c1')
  t.equal(buildAuthorizationRedirect('http://127.0.0.1:8080/cb', { code: 'c' }), 'http://127.0.0.1:8080/cb?code=c')
  t.equal(buildAuthorizationRedirect('cursor://anysphere.cursor-retrieval/cb', { code: 'c' }), 'cursor://anysphere.cursor-retrieval/cb?code=c')
})

t.test('a route whose allowed_clients does not name the client: invalid_target, sent back to the client', async t => {
  const restricted = { ...files, allowedClients: ['another-client'] }
  const outcome = await validateAuthorizeRequest(good, { ...ctx, routes: [calc, restricted] })
  t.equal(outcome.ok, false)
  if (!outcome.ok) t.match(outcome.error, { code: 'invalid_target', message: /may not get tokens for https:\/\/gw.example.com\/files\/mcp/ })
  const named = await validateAuthorizeRequest(good, { ...ctx, routes: [calc, { ...files, allowedClients: ['client-1'] }] })
  t.equal(named.ok, true, 'a client it names gets through')
})
