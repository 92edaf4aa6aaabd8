// A client that writes identity or forwarding headers itself (X-Forwarded-User, X-Real-IP,
// Forwarded, a forged X-Forwarded-For chain, a Host of its choosing, the upstream's own credential
// header) must not get them to the upstream: upstreams behind an auth proxy trust such headers.
import t from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { buildGateway, mintToken } from '../helper.js'
import { startMcpUpstream, type McpUpstream } from '../fixtures/mcp-upstream.js'

const BASE_URL = 'https://gw.example.com'
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }

/** Identity and forwarding claims as auth proxies, CDNs and meshes write them, all forged. */
const FORGED: Record<string, string> = {
  forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'gopher',
  'x-forwarded-port': '6666',
  'x-forwarded-prefix': '/admin',
  'x-forwarded-user': 'admin',
  'x-forwarded-email': 'admin@victim.example',
  'x-forwarded-groups': 'admins',
  'x-forwarded-access-token': 'forged-token',
  'x-auth-request-user': 'admin',
  'x-auth-request-email': 'admin@victim.example',
  'x-real-ip': '6.6.6.6',
  'x-client-ip': '6.6.6.6',
  'true-client-ip': '6.6.6.6',
  'cf-connecting-ip': '6.6.6.6',
  'x-cluster-client-ip': '6.6.6.6',
  'x-original-url': '/admin',
  'x-original-forwarded-for': '6.6.6.6',
  'x-remote-user': 'admin',
  'x-remote-group': 'system:masters',
  'remote-user': 'admin',
  'x-envoy-original-path': '/admin',
  'x-envoy-external-address': '6.6.6.6',
  'x-goog-authenticated-user-email': 'accounts.google.com:admin@victim.example',
  'x-amzn-oidc-identity': 'admin',
  'x-ms-client-principal-name': 'admin@victim.example',
  'cf-access-authenticated-user-email': 'admin@victim.example',
  'x-webauth-user': 'admin'
}

let upstream: McpUpstream
t.before(async () => { upstream = await startMcpUpstream({ jsonResponse: true }) })
t.teardown(async () => await upstream.close())

async function gateway (t: Parameters<typeof buildGateway>[0], env: Record<string, string> = {}): Promise<FastifyInstance> {
  return await buildGateway(t, {
    env: { BASE_URL, STATIC_KEY: 'operator-key', ...env },
    config: {
      proxies: [
        { pattern: '/calc/mcp', target_url: upstream.url },
        { pattern: '/id/mcp', target_url: upstream.url, upstream_auth: 'identity' },
        { pattern: '/static/mcp', target_url: upstream.url, upstream_auth: 'header', upstream_header: 'X-Api-Key', upstream_header_env: 'STATIC_KEY' }
      ]
    }
  })
}

/** Sends an MCP initialize with the client's extra headers; returns what the upstream received. */
async function upstreamSaw (app: FastifyInstance, pattern: string, headers: Record<string, string>): Promise<IncomingHttpHeaders> {
  const before = upstream.requests.length
  const res = await app.inject({
    method: 'POST',
    url: pattern,
    headers: { authorization: `Bearer ${mintToken(app, pattern, { sub: 'ana', email: 'ana@example.com' })}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
    payload: JSON.stringify(INIT)
  })
  if (res.statusCode !== 200) throw new Error(`initialize: ${res.statusCode} ${res.body}`)
  const seen = upstream.requests.slice(before)
  if (seen.length !== 1) throw new Error(`the upstream got ${seen.length} requests`)
  return seen[0].headers
}

t.test('forged identity and forwarding headers do not reach the upstream', async t => {
  const app = await gateway(t)
  const seen = await upstreamSaw(app, '/calc/mcp', { ...FORGED, host: 'evil.example', 'user-agent': 'honest-client/1.0' })
  const setByGateway = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'])
  for (const name of Object.keys(FORGED)) if (!setByGateway.has(name)) t.notOk(name in seen, `${name} stripped`)
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is the address the gateway saw, not the forged one')
  t.equal(seen['x-forwarded-host'], 'gw.example.com', 'X-Forwarded-Host from BASE_URL, not the client\'s Host')
  t.equal(seen['x-forwarded-proto'], 'https', 'X-Forwarded-Proto from BASE_URL')
  t.equal(seen.host, `127.0.0.1:${upstream.port}`, 'Host is the upstream\'s')
  t.notMatch(JSON.stringify(seen), /6\.6\.6\.6|evil\.example|admin/, 'no forged value anywhere')
  t.equal(seen['user-agent'], 'honest-client/1.0', 'ordinary headers still pass')
  t.equal(seen['mcp-protocol-version'], '2025-06-18', 'MCP headers still pass')
})

t.test('behind one trusted proxy the upstream gets the trusted part of the chain only', async t => {
  const app = await gateway(t, { TRUST_PROXY: '1' })
  // The client forged 6.6.6.6; the load balancer (the socket peer, 127.0.0.1) appended 203.0.113.7.
  const seen = await upstreamSaw(app, '/calc/mcp', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' })
  t.equal(seen['x-forwarded-for'], '203.0.113.7, 127.0.0.1')
  t.equal(seen['x-forwarded-host'], 'gw.example.com')
  t.equal(seen['x-forwarded-proto'], 'https')
})

t.test('TRUST_PROXY=0 trusts no hop: the forged chain is not passed on', async t => {
  const app = await gateway(t, { TRUST_PROXY: '0' })
  const seen = await upstreamSaw(app, '/calc/mcp', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' })
  t.equal(seen['x-forwarded-for'], '127.0.0.1')
})

t.test('a client cannot pre-set the credential header the gateway sets for the upstream', async t => {
  const app = await gateway(t)
  const staticSeen = await upstreamSaw(app, '/static/mcp', { 'x-api-key': 'attacker-key', ...FORGED })
  t.equal(staticSeen['x-api-key'], 'operator-key', 'upstream_auth header: only the operator\'s value')

  const idSeen = await upstreamSaw(app, '/id/mcp', { 'x-forwarded-email': 'admin@victim.example', 'x-auth-request-user': 'admin' })
  const [scheme, jwt] = String(idSeen.authorization).split(' ')
  t.equal(scheme, 'Bearer')
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as { sub: string, email: string, aud: string }
  t.match(claims, { sub: 'ana', email: 'ana@example.com', aud: upstream.url }, 'upstream_auth identity: the gateway\'s assertion of the real user')
  t.notOk('x-forwarded-email' in idSeen)
  t.notOk('x-auth-request-user' in idSeen)
})

t.test('the upstream gets the gateway\'s request id, never a malformed one', async t => {
  const app = await gateway(t)
  t.equal((await upstreamSaw(app, '/calc/mcp', { 'x-request-id': 'edge-42' }))['x-request-id'], 'edge-42', 'a well-formed id is passed on')
  const seen = await upstreamSaw(app, '/calc/mcp', { 'x-request-id': 'id","user":"admin' })
  t.match(seen['x-request-id'], /^[0-9a-f-]{36}$/, 'a malformed id is replaced')
})

t.test('hop-by-hop headers stay on their hop, and Connection cannot strip what the gateway sets', async t => {
  const app = await gateway(t)
  const hops = { connection: 'keep-alive, x-api-key, x-forwarded-host, x-hop-only', 'x-hop-only': 'secret-hop', 'keep-alive': 'timeout=1', upgrade: 'websocket', te: 'trailers', 'proxy-connection': 'keep-alive' }
  const seen = await upstreamSaw(app, '/static/mcp', hops)
  t.equal(seen['x-api-key'], 'operator-key', 'the credential header the client listed in Connection is still the operator\'s')
  t.equal(seen['x-forwarded-host'], 'gw.example.com', 'so is X-Forwarded-Host')
  for (const name of ['x-hop-only', 'keep-alive', 'upgrade', 'te', 'proxy-connection']) t.notOk(name in seen, `${name} not forwarded`)
  t.not(seen.connection, hops.connection, 'the client\'s Connection is not forwarded')

  const res = await app.inject({
    method: 'POST',
    url: '/calc/mcp',
    headers: { authorization: `Bearer ${mintToken(app, '/calc/mcp')}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    payload: JSON.stringify(INIT)
  })
  t.equal(res.statusCode, 200)
  t.notOk('keep-alive' in res.headers, 'the upstream\'s Keep-Alive is not passed to the client')
  t.notOk('transfer-encoding' in res.headers && 'content-length' in res.headers, 'never both a length and chunked framing')
})
