import t from 'tap'
import { Redis } from 'ioredis'
import { buildGateway, mintToken, startRedis, until } from '../helper.js'
import { startMcpUpstream } from '../fixtures/mcp-upstream.js'
import { KEYS_CHANNEL, rotateStoredSigningKey } from '../../src/keys/key-ring.js'

// Attack: use a revoked token on a replica that missed the revocation because only its pub/sub
// connection was reconnecting when the revocation was published.
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }
const headers = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' })

t.test('replicas whose subscription dropped catch up without a restart', async t => {
  const redis = await startRedis(t)
  const upstream = await startMcpUpstream({ jsonResponse: true })
  t.teardown(upstream.close)
  const config = { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] }
  const a = await buildGateway(t, { env: { REDIS_URL: redis.url }, config })
  const b = await buildGateway(t, { env: { REDIS_URL: redis.url }, config })
  const admin = new Redis({ host: '127.0.0.1', port: redis.port })
  t.teardown(() => admin.disconnect())
  const status = async (app: typeof a, token: string): Promise<number> =>
    (await app.inject({ method: 'POST', url: '/calc/mcp', headers: headers(token), payload: INIT })).statusCode
  const subscribers = async (channel: string): Promise<number> => Number((await admin.pubsub('NUMSUB', `mcpgw:${channel}`) as unknown[])[1])

  t.test('a revocation published while the subscription was reconnecting', async t => {
    const token = mintToken(a, '/calc/mcp')
    const claims = a.tokens.verify(token, a.config.routes[0].resourceUrl)
    t.equal(await status(b, token), 200, 'B accepts the token before')

    t.ok(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 2, 'the subscriber connections dropped (command connections stay up)')
    await a.tokens.revoke(claims.jti, claims.exp)
    t.equal(await subscribers('revocations'), 0, 'the revocation was published while nobody was subscribed')

    // Far below REVOCATION_RESYNC_SECONDS (30 s): B reloads as soon as it is subscribed again.
    t.ok(await until(async () => await status(b, token) === 401, 5000), 'B refuses the revoked token')
    t.ok(await until(async () => await subscribers('revocations') === 2), 'both replicas are subscribed again')
  })

  t.test('a rotation published while the subscription was reconnecting', async t => {
    t.ok(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 2)
    const next = await rotateStoredSigningKey(a.store, 3600)
    await a.store.publish(KEYS_CHANNEL, next.kid)
    t.equal(await subscribers('keys'), 0, 'the rotation was announced while nobody was subscribed')
    t.ok(await until(() => a.keys.signing[0].kid === next.kid && b.keys.signing[0].kid === next.kid, 5000), 'both replicas load the new key')
    t.equal(await status(b, mintToken(a, '/calc/mcp')), 200, 'a token from the new key works on B')
  })

  t.test('a revocation whose message was lost anyway is picked up by the periodic resync', async t => {
    const c = await buildGateway(t, { env: { REDIS_URL: redis.url, REVOCATION_RESYNC_SECONDS: '1' }, config })
    const token = mintToken(a, '/calc/mcp')
    const claims = a.tokens.verify(token, a.config.routes[0].resourceUrl)
    t.equal(await status(c, token), 200)
    // In the store, never published: as a message lost in transit leaves it.
    await admin.zadd('mcpgw:revoked', claims.exp, `${claims.jti} ${claims.exp}`)
    t.ok(await until(async () => await status(c, token) === 401, 3000), 'C refuses it within the resync interval')
  })
})
