import t from 'tap'
import { MemoryStore } from '../src/store/memory-store.js'
import { openStore } from '../src/store/open-store.js'
import { parseEnv } from '../src/config/env.js'
import { StoreUnavailableError } from '../src/oauth/errors.js'
import { sleep, startRedis } from './helper.js'
import { contract } from './fixtures/store-contract.js'

const quiet = { warn: () => {} }

t.test('memory store', async t => {
  const store = new MemoryStore()
  await contract(t, store)
  await store.close()
})

t.test('memory store stays bounded, dropping the oldest entries', async t => {
  const store = new MemoryStore(3)
  for (const k of ['a', 'b', 'c', 'd']) await store.set(k, k)
  t.equal(await store.get('a'), null)
  t.equal(await store.get('d'), 'd')
})

t.test('redis store', async t => {
  const redis = await startRedis(t)
  const { store, description } = await openStore(parseEnv({ REDIS_URL: redis.url }), quiet)
  t.teardown(async () => await store.close())
  t.equal(store.kind, 'redis')
  t.match(description, `redis redis://127.0.0.1:${redis.port}`)
  await contract(t, store)
})

t.test('redis store fails fast with StoreUnavailableError while Redis is down, then recovers by itself', async t => {
  const redis = await startRedis(t)
  const { store } = await openStore(parseEnv({ REDIS_ADDR: `127.0.0.1:${redis.port}` }), quiet)
  t.teardown(async () => await store.close())
  let reconnected = 0
  store.onReconnect(() => { reconnected++ })
  await redis.kill()
  await sleep(100)
  const started = Date.now()
  await t.rejects(store.get('x'), StoreUnavailableError)
  t.ok(Date.now() - started < 1000, 'no hanging while Redis is away')
  t.equal(await store.ping(), false)
  const closing = await openStore(parseEnv({ REDIS_URL: redis.url }), quiet, 1000).catch(() => null)
  t.equal(closing, null, 'no new connection while Redis is down')
  await redis.start()
  for (let i = 0; i < 60 && !(await store.ping()); i++) await sleep(100)
  t.equal(await store.ping(), true, 'reconnected')
  t.equal(reconnected, 1, 'reconnect handlers ran')
  await store.set('x', 'back')
  t.equal(await store.get('x'), 'back')
})

t.test('closing while Redis is down does not hang', async t => {
  const redis = await startRedis(t)
  const { store } = await openStore(parseEnv({ REDIS_URL: redis.url }), quiet)
  await redis.kill()
  await sleep(100)
  const started = Date.now()
  await store.close()
  t.ok(Date.now() - started < 1000, 'closed at once')
})

t.test('an unreachable Redis stops start-up with a message that says where', async t => {
  await t.rejects(openStore(parseEnv({ REDIS_URL: 'redis://127.0.0.1:1' }), quiet, 1000), /Redis at redis:\/\/127\.0\.0\.1:1 is unreachable/)
})
