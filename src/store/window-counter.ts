import type { Store } from './store.js'

export interface WindowLimit {
  max: number
  windowMs: number
}

/**
 * Counts one event under `key` in the shared store, so a cap holds across replicas; false (and
 * nothing counted) once `max` events were counted in the window that began with the first of
 * them. Compare-and-swap keeps concurrent replicas from losing counts; a key contended past
 * reason answers false too, since every lost swap means another event was counted.
 */
export async function countInWindow (store: Store, key: string, limit: WindowLimit, now = Date.now()): Promise<boolean> {
  for (let attempt = 0; attempt <= limit.max + 1; attempt++) {
    const raw = await store.get(key)
    const [start, count] = raw === null ? [now, 0] : raw.split(':').map(Number)
    // A window that is over (or a value that is not ours) starts a new one.
    const fresh = !Number.isFinite(start) || !Number.isInteger(count) || now - start >= limit.windowMs
    const [windowStart, counted] = fresh ? [now, 0] : [start, count]
    if (counted >= limit.max) return false
    const ttlSeconds = Math.max(1, Math.ceil((windowStart + limit.windowMs - now) / 1000))
    if (await store.cas(key, raw, `${windowStart}:${counted + 1}`, ttlSeconds)) return true
  }
  return false
}
