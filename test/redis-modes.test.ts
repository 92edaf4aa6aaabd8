import t, { type Test } from 'tap'
import { parseEnv } from '../src/config/env.js'
import { ConfigError } from '../src/config/config-error.js'
import { openStore } from '../src/store/open-store.js'
import type { Store } from '../src/store/store.js'
import { contract } from './fixtures/store-contract.js'
import { startRedisCluster, startSentinel } from './fixtures/redis-topologies.js'
import { buildGateway, sleep, startRedis } from './helper.js'

const quiet = { warn: () => {} }

const open = async (t: Test, env: Record<string, string>): Promise<Store> => {
  const { store } = await openStore(parseEnv(env), quiet)
  t.teardown(async () => await store.close())
  return store
}

/** A message published through one store reaches a subscriber on another (another replica). */
async function crossReplicaPubSub (t: Test, env: Record<string, string>): Promise<void> {
  const [a, b] = [await open(t, env), await open(t, env)]
  const got: string[] = []
  await b.subscribe('revocations', m => got.push(m))
  await a.publish('revocations', 'jti-1 123')
  for (let i = 0; i < 40 && got.length === 0; i++) await sleep(25)
  t.same(got, ['jti-1 123'], 'the other replica hears it')
}

t.test('a wrong combination of Redis variables stops start-up naming them', async t => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ REDIS_URL: 'redis://127.0.0.1:1', REDIS_SENTINELS: '127.0.0.1:2', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS', /REDIS_URL\/REDIS_ADDR/],
    [{ REDIS_ADDR: '127.0.0.1:1', REDIS_CLUSTER_NODES: '127.0.0.1:2' }, 'REDIS_CLUSTER_NODES', /REDIS_URL\/REDIS_ADDR/],
    [{ REDIS_SENTINELS: '127.0.0.1:2', REDIS_SENTINEL_MASTER: 'm', REDIS_CLUSTER_NODES: '127.0.0.1:3' }, 'REDIS_CLUSTER_NODES', /REDIS_SENTINELS/],
    [{ REDIS_SENTINELS: '127.0.0.1:2' }, 'REDIS_SENTINEL_MASTER', /required with REDIS_SENTINELS/],
    [{ REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINEL_MASTER', /needs REDIS_SENTINELS/],
    [{ REDIS_URL: 'redis://127.0.0.1:1', REDIS_SENTINEL_PASSWORD: 'x' }, 'REDIS_SENTINEL_PASSWORD', /needs REDIS_SENTINELS/],
    [{ REDIS_SENTINELS: '127.0.0.1', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS', /host:port,host:port/],
    [{ REDIS_CLUSTER_NODES: '127.0.0.1:1,,nohost' }, 'REDIS_CLUSTER_NODES', /host:port,host:port/]
  ]
  for (const [env, setting, message] of cases) {
    const err = (() => { try { parseEnv(env); return null } catch (e) { return e } })()
    t.ok(err instanceof ConfigError, `${Object.keys(env).join(' + ')} is refused`)
    t.equal((err as ConfigError).setting, setting, `naming ${setting}`)
    t.match((err as Error).message, message)
  }
  t.same(parseEnv({ REDIS_SENTINELS: '127.0.0.1:1, 127.0.0.1:2', REDIS_SENTINEL_MASTER: 'm' }).REDIS_SENTINELS, '127.0.0.1:1, 127.0.0.1:2', 'blanks around commas are fine')
})

t.test('standalone: pub/sub between replicas; /readyz names the mode and the node', async t => {
  const redis = await startRedis(t)
  await crossReplicaPubSub(t, { REDIS_URL: redis.url })
  const app = await buildGateway(t, { env: { REDIS_URL: redis.url } })
  const ready = await app.inject('/readyz')
  t.same(ready.json(), { status: 'ready', store: 'redis', mode: 'standalone', node: `127.0.0.1:${redis.port}` })
})

t.test('sentinel: every store operation, pub/sub between replicas, /readyz names the master', async t => {
  const topology = await startSentinel(t)
  await contract(t, await open(t, topology.env))
  await crossReplicaPubSub(t, topology.env)
  const app = await buildGateway(t, { env: topology.env })
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', store: 'redis', mode: 'sentinel', node: `127.0.0.1:${await topology.masterPort()}` })
  const registered = await app.inject({ method: 'POST', url: '/oauth/register', payload: { redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' } })
  t.equal(registered.statusCode, 201, 'the OAuth endpoints work through the sentinels')
})

t.test('cluster: every store operation (keys spread over the slots), pub/sub between replicas, /readyz names the masters', async t => {
  const topology = await startRedisCluster(t)
  await contract(t, await open(t, topology.env))
  await crossReplicaPubSub(t, topology.env)
  const app = await buildGateway(t, { env: topology.env })
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  const masters = (await topology.masterPorts()).map(p => `127.0.0.1:${p}`).sort()
  t.same(ready.json(), { status: 'ready', store: 'redis', mode: 'cluster', node: masters.join(',') })
  const registered = await app.inject({ method: 'POST', url: '/oauth/register', payload: { redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' } })
  t.equal(registered.statusCode, 201, 'the OAuth endpoints (rate limiter included) work on a cluster')
})
