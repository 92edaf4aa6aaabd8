import t from 'tap'
import { buildGateway, mintToken, startRedis, until } from './helper.js'
import { startMcpUpstream } from './fixtures/mcp-upstream.js'
import { KEYS_CHANNEL, rotateStoredSigningKey } from '../src/keys/key-ring.js'
import type { FastifyInstance } from 'fastify'
import { StoreUnavailableError } from '../src/store/store-errors.js'
import { TokenRejected } from '../src/tokens/token-service.js'

const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }
/** Whether `app` refuses the token as revoked (what the proxied path checks). */
function isRevokedOn (app: FastifyInstance, token: string): boolean {
  try {
    app.tokens.verify(token, app.config.routes[0].resourceUrl)
    return false
  } catch (err) {
    return err instanceof TokenRejected && err.reason === 'revoked'
  }
}
const headers = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' })

t.test('replicas sharing Redis', async t => {
  const redis = await startRedis(t)
  const upstream = await startMcpUpstream({ jsonResponse: true })
  t.teardown(upstream.close)
  const options = { env: { REDIS_URL: redis.url }, config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] } }
  const a = await buildGateway(t, options)
  const b = await buildGateway(t, options)

  t.test('sign with the one key generated through the store', async t => {
    t.equal(a.keys.signing[0].kid, b.keys.signing[0].kid)
    const res = await b.inject({ method: 'POST', url: '/calc/mcp', headers: headers(mintToken(a, '/calc/mcp')), payload: INIT })
    t.equal(res.statusCode, 200, 'a token minted by A works on B')
    t.ok(res.headers['mcp-session-id'])
  })

  t.test('a revocation on one replica reaches the other within a second', async t => {
    const token = mintToken(a, '/calc/mcp')
    const claims = a.tokens.verify(token, a.config.routes[0].resourceUrl)
    t.equal((await b.inject({ method: 'POST', url: '/calc/mcp', headers: headers(token), payload: INIT })).statusCode, 200)
    await a.tokens.revoke(claims.jti, claims.exp)
    t.ok(await until(() => isRevokedOn(b, token), 3000), 'B learned of it')
    const res = await b.inject({ method: 'POST', url: '/calc/mcp', headers: headers(token), payload: INIT })
    t.equal(res.statusCode, 401)
    t.match(res.headers['www-authenticate'], /revoked/)
  })

  t.test('a replica that starts later knows earlier revocations', async t => {
    const token = mintToken(a, '/calc/mcp')
    const claims = a.tokens.verify(token, a.config.routes[0].resourceUrl)
    await a.tokens.revoke(claims.jti, claims.exp)
    const c = await buildGateway(t, options)
    t.equal(isRevokedOn(c, token), true)
  })

  t.test('Redis down: readiness says so, valid tokens still proxy, then everything recovers', async t => {
    const token = mintToken(a, '/calc/mcp')
    const revokedBeforeToken = mintToken(a, '/calc/mcp', { sub: 'before-outage' })
    const revokedBefore = a.tokens.verify(revokedBeforeToken, a.config.routes[0].resourceUrl)
    await a.tokens.revoke(revokedBefore.jti, revokedBefore.exp)
    await redis.kill()
    t.equal((await a.inject('/readyz')).statusCode, 503)
    t.equal((await a.inject('/readyz')).headers['retry-after'], '5')
    t.equal((await a.inject('/healthz')).statusCode, 200, 'the process is alive')
    const proxied = await a.inject({ method: 'POST', url: '/calc/mcp', headers: headers(token), payload: INIT })
    t.equal(proxied.statusCode, 200, 'access tokens need no Redis')
    const claims = a.tokens.verify(token, a.config.routes[0].resourceUrl)
    await t.rejects(a.tokens.revoke(claims.jti, claims.exp), StoreUnavailableError, 'store-backed work answers 503')

    await redis.start()
    t.ok(await until(async () => (await a.inject('/readyz')).statusCode === 200 && (await b.inject('/readyz')).statusCode === 200, 8000), 'ready again unaided')
    const other = mintToken(a, '/calc/mcp', { sub: 'after-outage' })
    const otherClaims = a.tokens.verify(other, a.config.routes[0].resourceUrl)
    await a.tokens.revoke(otherClaims.jti, otherClaims.exp)
    t.ok(await until(() => isRevokedOn(b, other), 8000), 'pub/sub resubscribed after the outage')

    // Redis came back empty (no persistence): the replicas put their keys and revocations back.
    const late = await buildGateway(t, options)
    t.equal(late.keys.signing[0].kid, a.keys.signing[0].kid, 'a replica started after the outage adopts the same key')
    t.equal(isRevokedOn(late, other), true, 'and knows the revocations')
    t.equal(isRevokedOn(late, revokedBeforeToken), true, 'even those made before Redis lost its data')
  })

  t.test('key rotation: the new key signs, old tokens still verify, every replica follows', async t => {
    const before = mintToken(a, '/calc/mcp')
    const oldKid = a.keys.signing[0].kid
    const next = await rotateStoredSigningKey(a.store, 3600)
    await a.store.publish(KEYS_CHANNEL, next.kid)
    t.ok(await until(() => a.keys.signing[0].kid === next.kid && b.keys.signing[0].kid === next.kid), 'both replicas reloaded')
    t.not(next.kid, oldKid)
    const jwks = (await b.inject('/.well-known/jwks.json')).json()
    t.same(jwks.keys.map((k: { kid: string }) => k.kid), [next.kid, oldKid], 'JWKS lists the new and the old key')
    const after = mintToken(b, '/calc/mcp')
    t.equal(JSON.parse(Buffer.from(after.split('.')[0], 'base64url').toString()).kid, next.kid)
    for (const token of [before, after]) {
      t.equal((await a.inject({ method: 'POST', url: '/calc/mcp', headers: headers(token), payload: INIT })).statusCode, 200)
    }
  })
})
