import t, { type Test } from 'tap'
import { MemoryStore } from '../src/store/memory-store.js'
import { openStore } from '../src/store/open-store.js'
import { parseEnv } from '../src/config/env.js'
import type { Store } from '../src/store/store.js'
import { StoreUnavailableError } from '../src/oauth/errors.js'
import { sleep, startRedis } from './helper.js'

const quiet = { warn: () => {} }

/** The behaviour every store must have, run against both implementations. */
async function contract (t: Test, store: Store): Promise<void> {
  t.equal(await store.get('a:1'), null, 'absent key reads null')
  await store.set('a:1', 'one')
  t.equal(await store.get('a:1'), 'one')
  await store.set('a:ttl', 'soon gone', 1)
  t.equal(await store.get('a:ttl'), 'soon gone')
  await sleep(1100)
  t.equal(await store.get('a:ttl'), null, 'TTL honoured')

  await store.set('code:x', 'payload')
  t.equal(await store.getDel('code:x'), 'payload', 'getDel returns the value once')
  t.equal(await store.getDel('code:x'), null, '...and only once')

  t.equal(await store.cas('c:1', null, 'v1'), true, 'cas from absent')
  t.equal(await store.cas('c:1', null, 'v2'), false, 'cas from absent fails when present')
  t.equal(await store.cas('c:1', 'wrong', 'v2'), false, 'cas with a stale value fails')
  t.equal(await store.cas('c:1', 'v1', 'v2', 60), true, 'cas with the current value swaps')
  t.equal(await store.get('c:1'), 'v2')
  await store.del('c:1')
  t.equal(await store.get('c:1'), null)

  const now = Math.floor(Date.now() / 1000)
  await store.setAdd('s', 'live', now + 60)
  await store.setAdd('s', 'dead', now - 1)
  t.same(await store.setMembers('s'), ['live'], 'expired members drop out')

  const got: string[] = []
  await store.subscribe('chan', m => got.push(m))
  await store.publish('chan', 'hello')
  for (let i = 0; i < 20 && got.length === 0; i++) await sleep(25)
  t.same(got, ['hello'], 'pub/sub delivers')
  t.equal(await store.ping(), true)
}

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
