import t from 'tap'
import { MemoryStore } from '../src/store/memory-store.js'
import { openStore } from '../src/store/open-store.js'
import { parseEnv } from '../src/config/env.js'
import { StoreFullError, StoreUnavailableError } from '../src/store/store-errors.js'
import { sleep, startRedis } from './helper.js'
import { contract } from './fixtures/store-contract.js'

const quiet = { warn: () => {} }

t.test('memory store', async t => {
  const store = new MemoryStore({ longLived: 1000, shortLived: 1000 })
  await contract(t, store)
  await store.close()
})

t.test('memory store: each record class is bounded on its own and nothing is ever evicted', async t => {
  let now = 1_000_000
  const store = new MemoryStore({ longLived: 2, shortLived: 4 }, () => now)
  await store.set('session:victim', 'alice', 3600)
  await store.set('family:victim', 'family', 3600)
  await t.rejects(store.set('session:third', 'x', 3600), StoreFullError, 'long-lived full: a new one is refused...')
  await store.set('family:victim', 'rotated', 3600)
  t.equal(await store.get('family:victim'), 'rotated', '...while existing ones can still be rewritten')

  // Anonymous records (consent transactions, counters, unknown kinds) get half the short-lived budget.
  await store.set('authz:1', 'x', 600)
  await store.incr('pending-ip:127.0.0.1', 600)
  await t.rejects(store.set('authz:2', 'x', 600), StoreFullError, 'anonymous full')
  await t.rejects(store.incr('register-ip:127.0.0.2', 600), StoreFullError, 'a new counter is refused too')
  await t.rejects(store.set('no-such-kind:1', 'x', 600), StoreFullError, 'an unknown kind counts as anonymous')
  t.equal((await store.incr('pending-ip:127.0.0.1', 600)).count, 2, 'an existing counter still counts')
  await store.set('code:1', 'x', 300)
  await store.set('code-used:1', 'x', 300)
  t.equal(await store.get('code:1'), 'x', 'codes of signed-in users still find room')
  await t.rejects(store.set('code:2', 'x', 300), StoreFullError, 'short-lived full')
  t.equal(await store.get('session:victim'), 'alice', 'no session was evicted')
  t.equal(await store.get('family:victim'), 'rotated', 'no family was evicted')

  t.equal(await store.getDel('authz:1'), 'x')
  await store.set('authz:2', 'x', 600)
  t.pass('a consumed record frees its room')
  now += 3_601_000
  await store.set('authz:3', 'x', 600)
  await store.set('code:2', 'x', 300)
  t.pass('expired records are swept out when a class is full')
  t.equal(await store.get('session:victim'), null, 'and long-lived ones expire by their own TTL')
  await store.set('session:new', 'bob', 3600)
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
