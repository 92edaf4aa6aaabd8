import t from 'tap'
import { MemoryStore } from '../src/store/memory-store.js'
import { openStore } from '../src/store/open-store.js'
import { parseEnv } from '../src/config/env.js'
import { countInWindow } from '../src/store/window-counter.js'
import { startRedis } from './helper.js'

const limit = { max: 3, windowMs: 60_000 }

t.test('counts up to the cap within a window, then refuses until the window is over', async t => {
  const store = new MemoryStore()
  let now = 1_000_000
  const take = async (key = 'k'): Promise<boolean> => await countInWindow(store, key, limit, now)
  t.same([await take(), await take(), await take(), await take()], [true, true, true, false])
  t.equal(await take('other'), true, 'keys count apart')
  now += 59_000
  t.equal(await take(), false, 'still the same window')
  now += 1_000
  t.equal(await take(), true, 'a new window')
  await store.set('k', 'garbage')
  t.equal(await take(), true, 'a value that is not a counter starts a new window')
})

t.test('concurrent takes across two replicas sharing Redis never pass the cap', async t => {
  const redis = await startRedis(t)
  const quiet = { warn: () => {} }
  const a = await openStore(parseEnv({ REDIS_URL: redis.url }), quiet)
  const b = await openStore(parseEnv({ REDIS_URL: redis.url }), quiet)
  t.teardown(async () => { await a.store.close(); await b.store.close() })
  const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await countInWindow((i % 2 === 0 ? a : b).store, 'shared', { max: 5, windowMs: 60_000 })))
  t.equal(results.filter(Boolean).length, 5, 'exactly the cap was admitted')
})
