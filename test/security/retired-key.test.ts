import t from 'tap'
import { buildGateway, mintToken, sleep, startRedis, until } from '../helper.js'
import { startMcpUpstream } from '../fixtures/mcp-upstream.js'
import { KEYS_CHANNEL, rotateStoredSigningKey } from '../../src/keys/key-ring.js'

// Attack: keep using a token signed by a key the operator rotated out, after its overlap ended.
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }
const headers = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' })

t.test('a key past its retireAt stops verifying, even for a cached token, and leaves JWKS', async t => {
  const redis = await startRedis(t)
  const upstream = await startMcpUpstream({ jsonResponse: true })
  t.teardown(upstream.close)
  const gateway = await buildGateway(t, { env: { REDIS_URL: redis.url }, config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] } })
  const call = async (token: string): Promise<{ statusCode: number, headers: Record<string, unknown> }> =>
    await gateway.inject({ method: 'POST', url: '/calc/mcp', headers: headers(token), payload: INIT })
  const jwksKids = async (): Promise<string[]> => (await gateway.inject('/.well-known/jwks.json')).json().keys.map((k: { kid: string }) => k.kid)

  const oldKid = gateway.keys.signing[0].kid
  const old = mintToken(gateway, '/calc/mcp')
  // A short overlap: the old key verifies for two more seconds.
  const next = await rotateStoredSigningKey(gateway.store, 2)
  await gateway.store.publish(KEYS_CHANNEL, next.kid)
  t.ok(await until(() => gateway.keys.signing[0].kid === next.kid), 'the rotation reached the gateway')
  const retireAt = gateway.keys.signing.find(k => k.kid === oldKid)?.retireAt
  if (retireAt === undefined) throw new Error('the old key has no retireAt')

  t.equal((await call(old)).statusCode, 200, 'during the overlap the old token works (and is now in the verifier cache)')
  t.same(await jwksKids(), [next.kid, oldKid], 'JWKS lists both keys during the overlap')

  await sleep(retireAt * 1000 - Date.now() + 50)
  const refused = await call(old)
  t.equal(refused.statusCode, 401, 'after retireAt the old token is refused')
  t.match(refused.headers['www-authenticate'], /error="invalid_token"/)
  t.same(await jwksKids(), [next.kid], 'JWKS no longer serves the retired key')
  t.equal((await call(mintToken(gateway, '/calc/mcp'))).statusCode, 200, 'tokens from the new key still work')
})
