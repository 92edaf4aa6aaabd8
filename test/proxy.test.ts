import t from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createSigner, createVerifier } from 'fast-jwt'
import { createPublicKey } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { connect } from 'node:net'
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { buildGateway, freePort, mintToken, sleep } from './helper.js'
import { startMcpUpstream, type McpUpstream } from './fixtures/mcp-upstream.js'

const ACCEPT = 'application/json, text/event-stream'
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }

async function sdkClient (t: { teardown: (fn: () => unknown) => void }, url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'gateway-test', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
  t.teardown(async () => await client.close())
  return client
}

async function post (url: string, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT, ...headers }, body: JSON.stringify(body) })
}

/** Opens an MCP session by hand; returns the session id the client sees. */
async function openSession (url: string, token: string): Promise<string> {
  const res = await post(url, token, INIT)
  await res.text()
  const id = res.headers.get('mcp-session-id')
  if (id === null) throw new Error(`no session id (status ${res.status})`)
  await (await post(url, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': id })).text()
  return id
}

function textOf (result: unknown): string {
  return ((result as { content: Array<{ text: string }> }).content[0]).text
}

let upstream: McpUpstream
let gateway: FastifyInstance
let base: string

t.before(async () => {
  upstream = await startMcpUpstream()
})
t.teardown(async () => await upstream.close())

t.beforeEach(async t => {
  gateway = await buildGateway(t, {
    listen: true,
    env: { ALLOWED_ORIGINS: 'https://app.example.com', UPSTREAM_TIMEOUT_MS: '500', STATIC_KEY: 's3cret-header' },
    config: {
      proxies: [
        { pattern: '/calc/mcp', target_url: upstream.url },
        { pattern: '/files/mcp', target_url: upstream.url },
        { pattern: '/id/mcp', target_url: upstream.url, upstream_auth: 'identity' },
        { pattern: '/static/mcp', target_url: upstream.url, upstream_auth: 'header', upstream_header: 'X-Api-Key', upstream_header_env: 'STATIC_KEY' },
        { pattern: '/write/mcp', target_url: upstream.url, scopes: ['mcp', 'write'] },
        { pattern: '/slow/mcp', target_url: upstream.url.replace('/mcp', '/slow') },
        { pattern: '/big/mcp', target_url: upstream.url.replace('/mcp', '/big') },
        { pattern: '/cut/mcp', target_url: upstream.url.replace('/mcp', '/cut') },
        { pattern: '/chunked/mcp', target_url: upstream.url.replace('/mcp', '/chunked') }
      ]
    }
  })
  base = gateway.config.env.BASE_URL
})

t.test('the MCP SDK client lists and calls tools through the gateway with a minted token', async t => {
  const client = await sdkClient(t, `${base}/calc/mcp`, mintToken(gateway, '/calc/mcp'))
  const { tools } = await client.listTools()
  t.same(tools.map(tool => tool.name).sort(), ['add', 'headers', 'progress'])
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })), '5')
})

t.test('a token for one route is refused on another', async t => {
  const res = await post(`${base}/files/mcp`, mintToken(gateway, '/calc/mcp'), INIT)
  t.equal(res.status, 401)
  t.match(res.headers.get('www-authenticate'), /^Bearer error="invalid_token", error_description="The access token was issued for another resource", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/files\/mcp", scope="mcp"$/)
  t.equal((await res.json()).error, 'invalid_token')
})

t.test('a token the gateway has already accepted is refused once it expires, on another route, and once revoked', async t => {
  const token = mintToken(gateway, '/calc/mcp', { ttlSeconds: 60 })
  t.equal((await post(`${base}/calc/mcp`, token, INIT)).status, 200)
  t.equal((await post(`${base}/calc/mcp`, token, INIT)).status, 200, 'accepted again (remembered)')
  const elsewhere = await post(`${base}/files/mcp`, token, INIT)
  t.equal(elsewhere.status, 401, 'remembered for its own route only')
  t.match(elsewhere.headers.get('www-authenticate'), /issued for another resource/)

  // The system clock (which verification reads) a minute and a second on.
  const realNow = Date.now
  Date.now = () => realNow() + 61_000
  t.teardown(() => { Date.now = realNow })
  const late = await post(`${base}/calc/mcp`, token, INIT)
  t.equal(late.status, 401, 'refused once expired, though accepted before')
  t.match(late.headers.get('www-authenticate'), /error="invalid_token".*expired/)
  Date.now = realNow

  const other = mintToken(gateway, '/calc/mcp')
  t.equal((await post(`${base}/calc/mcp`, other, INIT)).status, 200)
  const otherClaims = JSON.parse(Buffer.from(other.split('.')[1], 'base64url').toString()) as { jti: string, exp: number }
  await gateway.tokens.revoke(otherClaims.jti, otherClaims.exp)
  t.equal((await post(`${base}/calc/mcp`, other, INIT)).status, 401, 'refused once revoked, though accepted before')
})

t.test('forged, foreign and expired tokens are refused with invalid_token', async t => {
  const key = gateway.keys.signing[0]
  const route = gateway.config.routeByPattern.get('/calc/mcp')!
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub: 'mallory', aud: route.resourceUrl, iat: now, exp: now + 600, jti: 'x', scope: 'mcp', client_id: 'c' }
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  const good = mintToken(gateway, '/calc/mcp')
  const [h, p, s] = good.split('.')
  const tampered = [h, b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'admin' }), s].join('.')
  const cases: Record<string, [string, RegExp]> = {
    expired: [mintToken(gateway, '/calc/mcp', { ttlSeconds: -30 }), /expired/],
    tampered: [tampered, /signature/],
    'alg none': [`${b64({ alg: 'none', typ: 'at+jwt', kid: key.kid })}.${b64({ ...claims, iss: base })}.`, /algorithm|malformed/],
    'HS256 keyed with the public key': [createSigner({ algorithm: 'HS256', key: key.publicPem, kid: key.kid, header: { alg: 'HS256', typ: 'at+jwt' } })({ ...claims, iss: base }), /algorithm/],
    'foreign issuer, our key': [createSigner({ algorithm: 'ES256', key: key.privatePem, kid: key.kid, header: { alg: 'ES256', typ: 'at+jwt' } })({ ...claims, iss: 'https://evil.example' }), /another server/],
    'Google-shaped opaque token': ['ya29.a0AfH6SMBx-notajwt_opaque_google_token', /not signed by this gateway|not a JWT/],
    'identity token used as access token': [gateway.tokens.identityToken({ ...claims, iss: base }, route.resourceUrl), /not an access token/]
  }
  for (const [name, [token, description]] of Object.entries(cases)) {
    const res = await post(`${base}/calc/mcp`, token, INIT)
    t.equal(res.status, 401, name)
    const challenge = res.headers.get('www-authenticate') ?? ''
    t.match(challenge, /error="invalid_token"/, name)
    t.match(challenge, description, name)
  }
  t.equal(upstream.requests.filter(r => r.headers['user-agent'] === 'mallory').length, 0)
  const metrics = await gateway.inject('/metrics')
  t.match(metrics.body, /mcpgw_auth_failures_total\{reason="expired"\} 1/)
  t.match(metrics.body, /mcpgw_auth_failures_total\{reason="bad_algorithm"\} [12]/)
})

t.test('a token in the query string is refused', async t => {
  const res = await fetch(`${base}/calc/mcp?access_token=${mintToken(gateway, '/calc/mcp')}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: ACCEPT }, body: JSON.stringify(INIT) })
  t.equal(res.status, 400)
  t.equal((await res.json()).error, 'invalid_request')
})

t.test('a token without the route scopes gets 403 insufficient_scope with the scopes to ask for', async t => {
  const res = await post(`${base}/write/mcp`, mintToken(gateway, '/write/mcp', { scopes: ['mcp', 'read'] }), INIT)
  t.equal(res.status, 403)
  t.match(res.headers.get('www-authenticate'), /^Bearer error="insufficient_scope", scope="mcp read write", resource_metadata="[^"]+\/write\/mcp"/)
})

t.test('the upstream never sees the client token; it gets forwarding headers and its own Host', async t => {
  const token = mintToken(gateway, '/calc/mcp')
  const client = await sdkClient(t, `${base}/calc/mcp`, token)
  const seen = JSON.parse(textOf(await client.callTool({ name: 'headers', arguments: {} })))
  t.notOk(seen.authorization, 'no Authorization upstream')
  t.equal(seen.host, `127.0.0.1:${upstream.port}`)
  t.equal(seen['x-forwarded-proto'], 'http')
  t.equal(seen['x-forwarded-host'], new URL(base).host)
  t.equal(seen['x-forwarded-for'], '127.0.0.1')
  t.ok(seen['mcp-protocol-version'], 'MCP-Protocol-Version forwarded')
  t.notOk(upstream.requests.some(r => JSON.stringify(r.headers).includes(token)), 'the token is in no upstream request')
})

t.test('upstream_auth identity sends a gateway-signed JWT for the target; header sends the static header', async t => {
  const idClient = await sdkClient(t, `${base}/id/mcp`, mintToken(gateway, '/id/mcp', { sub: 'ana', email: 'ana@example.com' }))
  const seen = JSON.parse(textOf(await idClient.callTool({ name: 'headers', arguments: {} })))
  const [scheme, jwt] = String(seen.authorization).split(' ')
  t.equal(scheme, 'Bearer')
  const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json()
  const verify = createVerifier({ key: createPublicKey({ key: jwks.keys[0], format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString(), allowedAud: upstream.url, allowedIss: base })
  const claims = verify(jwt)
  t.equal(claims.sub, 'ana')
  t.equal(claims.email, 'ana@example.com')
  t.equal(claims.client_id, 'test-client')
  t.ok(claims.exp - claims.iat <= 300, 'short-lived')

  const staticClient = await sdkClient(t, `${base}/static/mcp`, mintToken(gateway, '/static/mcp'))
  const seenStatic = JSON.parse(textOf(await staticClient.callTool({ name: 'headers', arguments: {} })))
  t.equal(seenStatic['x-api-key'], 's3cret-header')
  t.notOk(seenStatic.authorization)
})

t.test('SSE events arrive one by one and a quiet gap of 2 s does not cut the stream', async t => {
  const token = mintToken(gateway, '/calc/mcp')
  const session = await openSession(`${base}/calc/mcp`, token)
  const started = Date.now()
  const res = await post(`${base}/calc/mcp`, token, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'progress', arguments: { steps: 3, delayMs: 1000 } } }, { 'mcp-session-id': session })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/event-stream/)
  const headersAt = Date.now() - started
  t.ok(headersAt < 500, `headers arrive before the first event (${headersAt} ms)`)
  const reader = res.body!.getReader()
  const arrivals: Array<{ at: number, text: string }> = []
  let buffered = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    buffered += Buffer.from(value).toString()
    let end: number
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end)
      buffered = buffered.slice(end + 2)
      if (event.includes('data:')) arrivals.push({ at: Date.now() - started, text: event })
    }
  }
  t.equal(arrivals.length, 4, 'three notifications and the result')
  t.match(arrivals[0].text, /step 1/)
  t.match(arrivals[3].text, /done after 3 steps/)
  t.ok(arrivals[3].at - arrivals[0].at >= 1800, `events spread over time (first ${arrivals[0].at} ms, last ${arrivals[3].at} ms)`)
  t.ok(arrivals[0].at < 1800, 'first event arrived long before the last')
})

t.test('the gateway keeps quiet streams open', async t => {
  const token = mintToken(gateway, '/calc/mcp')
  const session = await openSession(`${base}/calc/mcp`, token)
  const res = await post(`${base}/calc/mcp`, token, { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'progress', arguments: { steps: 1, delayMs: 2200 } } }, { 'mcp-session-id': session })
  const text = await res.text()
  t.match(text, /step 1/)
  t.match(text, /done after 1 steps/)
})

t.test('DELETE ends the session upstream; the session id is bound to its user', async t => {
  const token = mintToken(gateway, '/calc/mcp', { sub: 'ana' })
  const session = await openSession(`${base}/calc/mcp`, token)
  t.match(session, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{22}$/, 'the client sees a bound id')

  const mallory = mintToken(gateway, '/calc/mcp', { sub: 'mallory' })
  const hijack = await post(`${base}/calc/mcp`, mallory, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': session })
  t.equal(hijack.status, 403)
  t.equal((await hijack.json()).error, 'session_not_bound', 'a session refusal of its own, not OAuth access_denied')
  const raw = session.split('.')[0]
  const bare = await post(`${base}/calc/mcp`, mallory, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': raw })
  t.equal(bare.status, 403, 'the bare upstream id is refused too')

  const before = upstream.requests.length
  const del = await fetch(`${base}/calc/mcp`, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': session } })
  t.equal(del.status, 200)
  const reached = upstream.requests.slice(before)
  t.same(reached.map(r => [r.method, r.headers['mcp-session-id']]), [['DELETE', raw]], 'DELETE reached the upstream with its own id')
  const after = await post(`${base}/calc/mcp`, token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': session })
  t.equal(after.status, 404, 'the upstream 404 for an ended session passes through')
})

t.test('a disallowed Origin gets 403; an allowed one and none pass', async t => {
  const token = mintToken(gateway, '/calc/mcp')
  const bad = await post(`${base}/calc/mcp`, token, INIT, { origin: 'https://evil.example' })
  t.equal(bad.status, 403)
  t.match(await bad.json(), { error: 'origin_not_allowed', error_description: /evil\.example/, route: '/calc/mcp' }, 'an Origin refusal of its own, not OAuth access_denied')
  const good = await post(`${base}/calc/mcp`, token, INIT, { origin: 'https://app.example.com' })
  t.equal(good.status, 200)
  t.equal(good.headers.get('access-control-allow-origin'), 'https://app.example.com')
  t.match(good.headers.get('access-control-expose-headers'), /Mcp-Session-Id/)
  await good.text()
  const preflight = await fetch(`${base}/calc/mcp`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,mcp-session-id' } })
  t.equal(preflight.status, 204)
  t.match(preflight.headers.get('access-control-allow-headers'), /Mcp-Session-Id/)
})

t.test('an unreachable upstream gives 502 and a slow one 504, naming the route', async t => {
  const slow = await post(`${base}/slow/mcp`, mintToken(gateway, '/slow/mcp'), INIT)
  t.equal(slow.status, 504)
  t.same(await slow.json(), { error: 'gateway_timeout', error_description: 'The upstream of /slow/mcp did not answer in time', route: '/slow/mcp' })
  const metrics = await gateway.inject('/metrics')
  t.match(metrics.body, /mcpgw_upstream_errors_total\{route="\/slow\/mcp",kind="timeout"\} 1/)

  // Built last: a new app starts a fresh metrics registry.
  const deadPort = await freePort()
  const app = await buildGateway(t, { config: { proxies: [{ pattern: '/dead/mcp', target_url: `http://127.0.0.1:${deadPort}/mcp` }] } })
  const res = await app.inject({ method: 'POST', url: '/dead/mcp', headers: { authorization: `Bearer ${mintToken(app, '/dead/mcp')}`, 'content-type': 'application/json' }, payload: INIT })
  t.equal(res.statusCode, 502)
  t.same(res.json(), { error: 'bad_gateway', error_description: 'The upstream of /dead/mcp could not be reached', route: '/dead/mcp' })
})

t.test('a large answer without a length streams through whole', async t => {
  const res = await post(`${base}/big/mcp`, mintToken(gateway, '/big/mcp'), INIT)
  t.equal(res.status, 200)
  const body = await res.json()
  t.equal(body.result.blob.length, 32 * 64 * 1024)
})

/** A POST over node:http, so that the framing (Content-Length or chunked) can be read. */
async function rawPost (url: string, token: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, headers: IncomingHttpHeaders, body: string }> {
  const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT, ...headers } })
  req.end(JSON.stringify(body))
  const [res] = await once(req, 'response') as [IncomingMessage]
  let text = ''
  for await (const chunk of res) text += (chunk as Buffer).toString()
  return { status: res.statusCode ?? 0, headers: res.headers, body: text }
}

t.test('a JSON answer the upstream sends chunked reaches the client in one piece with its length', async t => {
  const token = mintToken(gateway, '/chunked/mcp')
  const direct = await rawPost(upstream.url.replace('/mcp', '/chunked'), token, INIT)
  t.equal(direct.headers['transfer-encoding'], 'chunked', 'the upstream sends its JSON without a length')
  const res = await rawPost(`${base}/chunked/mcp`, token, INIT)
  t.equal(res.status, 200)
  t.equal(res.headers['content-length'], String(Buffer.byteLength(res.body)), 'sent with its Content-Length')
  t.notOk('transfer-encoding' in res.headers, 'not chunked')
  t.equal(res.body, direct.body, 'byte for byte')
})

t.test('an answer without a length that grows past 1 MiB streams on, not buffered whole', async t => {
  const res = await rawPost(`${base}/big/mcp`, mintToken(gateway, '/big/mcp'), INIT)
  t.equal(res.status, 200)
  t.equal(res.headers['transfer-encoding'], 'chunked', 'streamed: its length was not known when it started')
  t.equal(JSON.parse(res.body).result.blob.length, 32 * 64 * 1024, 'whole, the gathered start included')
})

t.test('an answer without a length that breaks off is a 502, not a truncated 200', async t => {
  const res = await post(`${base}/cut/mcp`, mintToken(gateway, '/cut/mcp'), INIT)
  t.equal(res.status, 502)
  t.same(await res.json(), { error: 'bad_gateway', error_description: 'The upstream of /cut/mcp could not be reached', route: '/cut/mcp' })
})

t.test('a client that goes away aborts the upstream request', async t => {
  const token = mintToken(gateway, '/calc/mcp')
  const session = await openSession(`${base}/calc/mcp`, token)
  const abortedBefore = upstream.aborted
  const controller = new AbortController()
  const res = await post(`${base}/calc/mcp`, token, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'progress', arguments: { steps: 10, delayMs: 300 } } }, { 'mcp-session-id': session })
  const reader = res.body!.getReader()
  await reader.read()
  controller.abort()
  await reader.cancel()
  for (let i = 0; i < 40 && upstream.aborted === abortedBefore; i++) await sleep(50)
  t.equal(upstream.aborted, abortedBefore + 1, 'the upstream saw its request end early')
})

t.test('closing does not wait for a connection a client opened and never used', async t => {
  const port = Number(new URL(base).port)
  const spare = connect(port, '127.0.0.1')
  await once(spare, 'connect')
  const closed = once(spare, 'close')
  const started = performance.now()
  await gateway.close()
  await closed
  // Node counts such a connection as busy; the client would keep it for the Keep-Alive timeout (72 s).
  t.ok(performance.now() - started < 5000, 'closed at once, not after the client\'s keep-alive timeout')
})

t.test('an upstream that refuses the gateway\'s credentials is a 502, and its challenge stays behind', async t => {
  const refusing = createServer((req, res) => {
    req.resume()
    res.writeHead(401, { 'www-authenticate': 'Bearer realm="elsewhere"', 'content-type': 'application/json' }).end('{"error":"unauthorized"}')
  })
  await new Promise<void>(resolve => refusing.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { refusing.close() })
  const { port } = refusing.address() as { port: number }
  const app = await buildGateway(t, { config: { proxies: [{ pattern: '/locked/mcp', target_url: `http://127.0.0.1:${port}/mcp` }] } })
  const res = await app.inject({ method: 'POST', url: '/locked/mcp', headers: { authorization: `Bearer ${mintToken(app, '/locked/mcp')}`, 'content-type': 'application/json' }, payload: INIT })
  t.equal(res.statusCode, 502, 'not the upstream\'s 401: the client logged in to the gateway, not there')
  t.same(res.json(), { error: 'bad_gateway', error_description: 'The upstream of /locked/mcp refused the gateway\'s credentials', route: '/locked/mcp' })
  t.notOk('www-authenticate' in res.headers, 'the upstream\'s challenge is not passed on')
  t.match((await app.inject('/metrics')).body, /mcpgw_upstream_errors_total\{route="\/locked\/mcp",kind="upstream_401"\} 1/)
})
