import t, { type Test } from 'tap'
import { parseEnv } from '../src/config/env.js'
import { StoreUnavailableError } from '../src/store/store-errors.js'
import { openStore } from '../src/store/open-store.js'
import type { Store } from '../src/store/store.js'
import { redisCommand, startRedisCluster, startSentinel } from './fixtures/redis-topologies.js'
import { buildGateway, startRedis } from './helper.js'

// A write that carries a grant is answered only once a replica has it; otherwise a failover
// right after the answer could undo it (Redis replication is asynchronous).

const register = { method: 'POST' as const, url: '/oauth/register', payload: { redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' } }

const open = async (t: Test, env: Record<string, string>): Promise<Store> => {
  const { store } = await openStore(parseEnv(env), { warn: () => {} })
  t.teardown(async () => await store.close())
  return store
}

t.test('sentinel: with no replica to acknowledge, a registration answers 503 + Retry-After instead of a client a failover would lose', async t => {
  const topology = await startSentinel(t, 1)
  const env = { ...topology.env, REDIS_WAIT_TIMEOUT_MS: '200' }
  const app = await buildGateway(t, { env })
  t.equal((await app.inject(register)).statusCode, 201, 'registered while the replica is up')

  await topology.nodes[1].kill()
  const started = Date.now()
  const refused = await app.inject(register)
  t.equal(refused.statusCode, 503, 'no replica acknowledged: not reported as registered')
  t.ok(Number(refused.headers['retry-after']) > 0, 'with Retry-After')
  t.equal(refused.json().error, 'temporarily_unavailable')
  t.ok(Date.now() - started < 2000, 'bounded by REDIS_WAIT_TIMEOUT_MS, not hanging')
  t.equal((await app.inject('/readyz')).statusCode, 200, 'the master itself still answers')

  const unwaited = await buildGateway(t, { env: { ...env, REDIS_WAIT_REPLICAS: '0' } })
  t.equal((await unwaited.inject(register)).statusCode, 201, 'REDIS_WAIT_REPLICAS=0 turns the wait off')

  await topology.nodes[1].start()
  let status = 0
  for (let i = 0; i < 50 && status !== 201; i++) {
    status = (await app.inject(register)).statusCode
    if (status !== 201) await new Promise(resolve => setTimeout(resolve, 200))
  }
  t.equal(status, 201, 'registrations succeed again once the replica is back')
})

t.test('standalone: no replica to wait for, so no wait (registration works on a lone Redis)', async t => {
  const redis = await startRedis(t)
  const app = await buildGateway(t, { env: { REDIS_URL: redis.url, REDIS_WAIT_REPLICAS: '1' } })
  t.equal((await app.inject(register)).statusCode, 201)
})

t.test('cluster: the wait goes to the node holding the key; only grant-bearing kinds wait', async t => {
  const topology = await startRedisCluster(t)
  const store = await open(t, { ...topology.env, REDIS_WAIT_TIMEOUT_MS: '200' })
  // Find the master of each of a few client keys, then stop the replica of one of those masters.
  const any = topology.servers[0].port
  const slots = await redisCommand(any, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
  const owner = async (key: string): Promise<number> => {
    const slot = Number(await redisCommand(any, 'CLUSTER', 'KEYSLOT', `mcpgw:${key}`))
    return (slots.find(([from, to]) => slot >= from && slot <= to) as [number, number, [string, number]])[2][1]
  }
  const keys = Array.from({ length: 12 }, (_, i) => `client:c${i}`)
  for (const key of keys) await store.set(key, 'x', 60)
  const owners = new Map<string, number>()
  for (const key of keys) owners.set(key, await owner(key))
  const victimMaster = owners.get(keys[0]) as number
  const replicaPort = Number(/slave0:ip=[^,]+,port=(\d+)/.exec(String(await redisCommand(victimMaster, 'INFO', 'replication')))?.[1])
  await topology.servers.find(s => s.port === replicaPort)?.kill()

  const onVictim = keys.filter(k => owners.get(k) === victimMaster)
  const elsewhere = keys.filter(k => owners.get(k) !== victimMaster)
  t.ok(elsewhere.length > 0, 'some keys live on other masters')
  for (const key of onVictim) await t.rejects(store.set(key, 'y', 60), StoreUnavailableError, `${key}: its master has no replica: refused`)
  for (const key of elsewhere) await t.resolves(store.set(key, 'y', 60), `${key}: its master's replica acknowledged`)
  await t.rejects(store.cas(onVictim[0], 'x', 'z'), StoreUnavailableError, 'compare-and-swap waits too')
  // A kind that is cheap to redo (a login state) does not wait, on the same master.
  const cheap = Array.from({ length: 40 }, (_, i) => `authz:t${i}`)
  for (const key of cheap) await store.set(key, 'v', 60)
  t.ok((await Promise.all(cheap.map(owner))).includes(victimMaster), 'an authorization transaction on that master was written without waiting')
})
