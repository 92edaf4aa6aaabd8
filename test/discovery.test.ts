import t from 'tap'
import { buildGateway } from './helper.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }, { pattern: '/files/mcp', target_url: 'http://127.0.0.1:9/mcp', scopes: ['files.read'] }] }

t.test('an unauthenticated request gets the challenge a client follows to the route metadata', async t => {
  const app = await buildGateway(t, { config })
  const res = await app.inject({ method: 'POST', url: '/calc/mcp', payload: { jsonrpc: '2.0', id: 1, method: 'tools/list' } })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer resource_metadata="http://gateway.test/.well-known/oauth-protected-resource/calc/mcp", scope="mcp"')
  t.notMatch(String(res.headers['www-authenticate']), /error=/, 'no error attribute when no token was sent')

  const prm = await app.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource/calc/mcp' })
  t.equal(prm.statusCode, 200)
  t.same(prm.json(), {
    resource: 'http://gateway.test/calc/mcp',
    authorization_servers: ['http://gateway.test'],
    scopes_supported: ['mcp'],
    bearer_methods_supported: ['header'],
    resource_name: 'MCP server at /calc/mcp'
  })
})

t.test('each route has its own metadata and the root lists every scope', async t => {
  const app = await buildGateway(t, { config })
  const files = await app.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource/files/mcp' })
  t.equal(files.json().resource, 'http://gateway.test/files/mcp')
  t.same(files.json().scopes_supported, ['files.read'])
  const root = await app.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource' })
  t.equal(root.json().resource, 'http://gateway.test')
  t.same(root.json().scopes_supported, ['mcp', 'files.read'])
})

t.test('offline_access is in the authorization-server metadata only, never in resource metadata or challenges', async t => {
  const app = await buildGateway(t, { config })
  for (const url of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    t.same((await app.inject(url)).json().scopes_supported, ['mcp', 'files.read', 'offline_access'], url)
  }
  for (const url of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/calc/mcp']) {
    t.notOk((await app.inject(url)).json().scopes_supported.includes('offline_access'), url)
  }
  const challenge = await app.inject({ method: 'POST', url: '/files/mcp', payload: { jsonrpc: '2.0', id: 1, method: 'tools/list' } })
  t.notMatch(String(challenge.headers['www-authenticate']), /offline_access/)
})

t.test('unknown well-known paths answer 404, never 5xx', async t => {
  const app = await buildGateway(t, { config })
  for (const url of ['/.well-known/oauth-protected-resource/nope/mcp', '/.well-known/whatever', '/.well-known/oauth-protected-resource/calc/mcp/extra']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().error, 'not_found')
  }
})

t.test('the JWKS publishes the signing key with its kid', async t => {
  const app = await buildGateway(t, { config })
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  const [key] = res.json().keys
  t.equal(key.kty, 'EC')
  t.equal(key.crv, 'P-256')
  t.equal(key.alg, 'ES256')
  t.equal(key.kid, app.keys.signing[0].kid)
  t.notOk(key.d, 'no private part')
})

t.test('health and readiness answer on the memory store', async t => {
  const app = await buildGateway(t, { config })
  t.equal((await app.inject('/healthz')).statusCode, 200)
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', store: 'memory' })
})
