import { normalizeIP } from '@fastify/rate-limit'
import type { Store } from './store.js'

export interface IpQuota {
  /** The counter's kind in the store (`<name>:<address>`). */
  name: string
  max: number
  windowSeconds: number
}

/**
 * Counts one use of `quota` by a client address in the store, so every replica sees the same
 * count. IPv6 addresses count per /64 (what one subscriber gets), as the rate limits do.
 * Returns whether the use is within the quota and, when not, the seconds until the window ends.
 */
export async function useIpQuota (store: Store, quota: IpQuota, ip: string): Promise<{ allowed: boolean, retryAfter: number }> {
  const { count, ttlSeconds } = await store.incr(`${quota.name}:${normalizeIP(ip)}`, quota.windowSeconds)
  return { allowed: count <= quota.max, retryAfter: ttlSeconds > 0 ? ttlSeconds : quota.windowSeconds }
}
