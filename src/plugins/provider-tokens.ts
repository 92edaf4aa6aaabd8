import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { UpstreamLoginError, type UpstreamTokens } from '../upstream/provider.js'
import { countRefresh } from './metrics.js'
import { setTimeout as sleep } from 'node:timers/promises'

/** Why no provider token can be had: the user must authorize again (401) or the provider is down (502). */
export class ProviderTokenError extends Error {
  constructor (readonly kind: 'reauthorize' | 'unavailable', message: string) {
    super(message)
    this.name = 'ProviderTokenError'
  }
}

export interface ProviderTokens {
  /** The user's current access token at the identity provider, refreshed when close to expiry. */
  accessTokenFor: (sub: string) => Promise<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    providerTokens: ProviderTokens
  }
}

/** Refresh this long before the provider's expiry, so a token is never sent stale. */
const EARLY_SECONDS = 60
/** How long one replica may hold the refresh lock, and how long others wait for its result. */
const LOCK_SECONDS = 15
const WAIT_MS = 10_000
const MAX_CACHED = 10_000

/**
 * The user's provider access token for routes with `upstream_auth: provider_token`. Held
 * encrypted in the store (by the login), cached briefly in memory so most requests read
 * nothing, and refreshed server-side: one replica takes a lock in the store and refreshes,
 * the others (and concurrent requests in this process) wait for its result, so many requests
 * cause one refresh at the provider.
 */
async function providerTokensPlugin (fastify: FastifyInstance): Promise<void> {
  const { store, authorizationFlow: flow } = fastify
  const instance = randomBytes(8).toString('hex')
  const cache = new Map<string, { token: string, freshUntil: number }>()
  const inFlight = new Map<string, Promise<string>>()
  const now = (): number => Math.floor(Date.now() / 1000)
  const fresh = (tokens: UpstreamTokens): boolean => tokens.expires_at === undefined || tokens.expires_at - EARLY_SECONDS > now()

  const remember = (sub: string, tokens: UpstreamTokens): string => {
    if (cache.size >= MAX_CACHED) cache.clear()
    // Re-read at least every minute: another replica may have dropped or refreshed the grant.
    cache.set(sub, { token: tokens.access_token, freshUntil: Math.min(now() + 60, (tokens.expires_at ?? Infinity) - EARLY_SECONDS) })
    return tokens.access_token
  }

  async function refresh (sub: string, held: UpstreamTokens): Promise<string> {
    const idp = fastify.upstreamIdp
    if (held.refresh_token === undefined || idp === null) {
      throw new ProviderTokenError('reauthorize', 'The identity provider sign-in has expired; authorize again')
    }
    let next: UpstreamTokens
    try {
      next = await countRefresh(fastify.gatewayMetrics, 'provider', err => err instanceof UpstreamLoginError && err.refused, async () => await idp.refresh(held.refresh_token as string))
    } catch (err) {
      if (err instanceof UpstreamLoginError && err.refused) {
        await flow.dropUpstreamTokens(sub)
        throw new ProviderTokenError('reauthorize', 'The identity provider no longer accepts this sign-in; authorize again')
      }
      throw new ProviderTokenError('unavailable', `The identity provider could not refresh the sign-in: ${(err as Error).message}`)
    }
    await flow.saveUpstreamTokens(sub, next)
    return remember(sub, next)
  }

  async function load (sub: string): Promise<string> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const held = await flow.upstreamTokens(sub)
      if (held === null) throw new ProviderTokenError('reauthorize', 'No identity provider sign-in is held for this user; authorize again')
      if (fresh(held)) return remember(sub, held)
      const lock = `upstream-refresh:${sub}`
      if (await store.cas(lock, null, instance, LOCK_SECONDS)) {
        try {
          return await refresh(sub, held)
        } finally {
          await store.del(lock).catch(() => {})
        }
      }
      // Another replica is refreshing: its result lands in the store.
      if (Date.now() > deadline) throw new ProviderTokenError('unavailable', 'Timed out waiting for the identity provider sign-in to be refreshed')
      await sleep(100)
    }
  }

  fastify.decorate('providerTokens', {
    async accessTokenFor (sub) {
      const cached = cache.get(sub)
      if (cached !== undefined && cached.freshUntil > now()) return cached.token
      let pending = inFlight.get(sub)
      if (pending === undefined) {
        pending = load(sub).finally(() => inFlight.delete(sub))
        inFlight.set(sub, pending)
      }
      return await pending
    }
  })
}

export default fp(providerTokensPlugin, { name: 'provider-tokens', fastify: '5.x', dependencies: ['store', 'upstream-idp', 'authorization-flow'] })
