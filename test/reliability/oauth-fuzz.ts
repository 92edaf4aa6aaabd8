import t from 'tap'
import { request } from 'undici'
import fc from 'fast-check'
import { REDIRECT, registerClient, startAuthorizationServer } from '../fixtures/authorization.js'
import { startRedis } from '../helper.js'
import { postOversized } from './cluster.js'

// Property-based fuzzing of every OAuth endpoint: whatever arrives, the answer is one of the
// documented 4xx (or a success), never a 5xx, and the gateway stays up.

const RUNS = { numRuns: 200, interruptAfterTimeLimit: 30_000 }
const OAUTH_ERRORS = ['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'invalid_target', 'invalid_client_metadata', 'invalid_redirect_uri', 'unsupported_token_type', 'unsupported_media_type']

interface Answer { status: number, type: string, text: string }

t.test('fuzzing the OAuth endpoints: no 5xx, the documented 4xx, the body limit enforced', async t => {
  const redis = await startRedis(t)
  // Each fuzzed request comes from its own forwarded IP, so the per-IP rate limits let most of
  // them reach the endpoint's own validation (a 429 is still an acceptable answer).
  const { base } = await startAuthorizationServer(t, { config: { proxies: [] }, env: { REDIS_URL: redis.url, TRUST_PROXY: 'true' } })
  const clientId = (await registerClient(base)).body.client_id as string
  let sent = 0
  const statuses = new Map<string, Map<number, number>>()
  const send = async (method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string): Promise<Answer> => {
    sent++
    const res = await request(`${base}${path}`, { method, headers: { 'x-forwarded-for': `10.${(sent >> 16) & 255}.${(sent >> 8) & 255}.${sent & 255}`, ...headers }, body })
    const seen = statuses.get(path.split('?')[0]) ?? new Map<number, number>()
    statuses.set(path.split('?')[0], seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1))
    return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), text: await res.body.text() }
  }
  /** JSON endpoints: a success, or a documented 4xx with an OAuth error code. */
  const expectJson = (what: string, a: Answer, ok: number[], errors: number[]): void => {
    if (ok.includes(a.status)) return
    if (!errors.includes(a.status) && a.status !== 429) throw new Error(`${what}: ${a.status} ${a.text.slice(0, 200)}`)
    const error = (JSON.parse(a.text) as { error?: string }).error
    if (a.status !== 429 && !OAUTH_ERRORS.includes(error ?? '')) throw new Error(`${what}: ${a.status} with error ${String(error)}`)
  }
  /** Browser endpoints: a redirect, or an HTML error page; 431 for a URL over the header limit. */
  const expectPage = (what: string, a: Answer): void => {
    if ([302, 303, 429, 431].includes(a.status)) return
    if (a.status !== 400 || !a.type.startsWith('text/html')) throw new Error(`${what}: ${a.status} ${a.type} ${a.text.slice(0, 200)}`)
  }

  // Already encoded: printable text, invalid UTF-8 as percent escapes, raw bytes, huge values
  // (in a query string, past Node's 16 KiB header limit).
  const value = (huge: number): fc.Arbitrary<string> => fc.oneof(
    fc.string().map(encodeURIComponent),
    fc.constantFrom('refresh_token', 'authorization_code', 'client_credentials', 'none', clientId, encodeURIComponent(REDIRECT), 'S256'),
    fc.uint8Array({ maxLength: 32 }).map(b => [...b].map(x => `%${x.toString(16).padStart(2, '0')}`).join('')),
    fc.uint8Array({ maxLength: 64 }).map(b => Buffer.from(b).toString('latin1')),
    fc.integer({ min: 1, max: huge }).map(n => 'x'.repeat(n))
  )
  const key = (known: string[]): fc.Arbitrary<string> => fc.oneof(fc.constantFrom(...known), fc.string().map(encodeURIComponent))
  // Pairs may repeat a key: duplicate parameters.
  const params = (known: string[], huge = 200_000): fc.Arbitrary<string> => fc.array(fc.tuple(key(known), value(huge)), { maxLength: 10 }).map(ps => ps.map(([k, v]) => `${k}=${v}`).join('&'))
  const contentType = fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'application/json', 'text/plain', 'multipart/form-data; boundary=x', '')
  const basic = fc.option(fc.oneof(
    fc.tuple(fc.oneof(fc.constant(clientId), fc.string()), fc.string()).map(([id, secret]) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`),
    fc.string().map(s => `Basic ${s}`)
  ), { nil: undefined })
  const FORM_PARAMS = ['grant_type', 'code', 'code_verifier', 'redirect_uri', 'client_id', 'client_secret', 'refresh_token', 'resource', 'scope', 'token', 'token_type_hint']

  const formEndpoint = async (path: string, ok: number[]): Promise<void> => {
    await fc.assert(fc.asyncProperty(params(FORM_PARAMS), contentType, basic, async (body, type, authorization) => {
      const headers: Record<string, string> = {}
      if (type !== '') headers['content-type'] = type
      if (authorization !== undefined) headers.authorization = authorization
      expectJson(`POST ${path} (${type})`, await send('POST', path, headers, body), ok, [400, 401, 415])
    }), RUNS)
  }

  await t.test('POST /oauth/token', async () => await formEndpoint('/oauth/token', []))
  // RFC 7009: an unknown token is revoked "successfully".
  await t.test('POST /oauth/revoke', async () => await formEndpoint('/oauth/revoke', [200]))
  await t.test('POST /oauth/introspect', async () => await formEndpoint('/oauth/introspect', [200]))

  await t.test('POST /oauth/register', async () => {
    const field = fc.oneof(fc.anything(), fc.array(fc.oneof(fc.webUrl(), fc.constant(REDIRECT), fc.string())), fc.constantFrom('none', 'client_secret_basic', 'authorization_code', 'refresh_token', 'native'))
    const metadata = fc.record({
      redirect_uris: field, grant_types: field, response_types: field, token_endpoint_auth_method: field, client_name: field, scope: field, client_uri: field, logo_uri: field, application_type: field
    }, { requiredKeys: [] })
    const body = fc.oneof(metadata.map(m => JSON.stringify(m)), fc.json(), fc.string(), fc.uint8Array({ maxLength: 256 }).map(b => Buffer.from(b).toString('latin1')))
    await fc.assert(fc.asyncProperty(body, contentType, async (text, type) => {
      expectJson(`POST /oauth/register (${type})`, await send('POST', '/oauth/register', type === '' ? {} : { 'content-type': type }, text), [201], [400, 415])
    }), RUNS)
  })

  await t.test('GET /oauth/authorize', async () => {
    await fc.assert(fc.asyncProperty(params(['response_type', 'client_id', 'redirect_uri', 'code_challenge', 'code_challenge_method', 'state', 'scope', 'resource'], 20_000), async query => {
      expectPage(`GET /oauth/authorize?${query.slice(0, 100)}`, await send('GET', `/oauth/authorize?${query}`, {}))
    }), RUNS)
  })

  await t.test('GET /oauth/callback', async () => {
    await fc.assert(fc.asyncProperty(params(['state', 'code', 'error', 'error_description', 'iss'], 20_000), async query => {
      expectPage(`GET /oauth/callback?${query.slice(0, 100)}`, await send('GET', `/oauth/callback?${query}`, {}))
    }), RUNS)
  })

  t.comment(`fuzzed OAuth requests: ${sent}, failed 0; answers: ${[...statuses].map(([path, seen]) => `${path} ${[...seen].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`).join(' ')}`).join('; ')}`)
  for (const path of ['/oauth/token', '/oauth/revoke', '/oauth/introspect', '/oauth/register']) {
    const big = await postOversized(`${base}${path}`, { 'content-type': path === '/oauth/register' ? 'application/json' : 'application/x-www-form-urlencoded' }, 2 * 1024 * 1024)
    t.equal(big.status, 413, `${path}: bodies over 1 MiB: 413`)
    t.match(JSON.parse(big.body), { error: 'invalid_request' })
  }
  t.equal((await fetch(`${base}/healthz`)).status, 200, 'still alive')
})
