/**
 * The user's provider access token for routes with `upstream_auth: provider_token`. Held sealed
 * in the store (by the login), cached briefly in memory so most requests read nothing, and
 * refreshed server-side before it goes stale (provider-token-freshness.ts): one replica takes a
 * lock in the store and refreshes, the others (and concurrent requests in this process) wait for
 * its result, so many requests cause one refresh at the provider.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { UpstreamLoginError, type UpstreamProvider } from '../upstream/provider.js'
import { freshUntil } from './provider-token-freshness.js'
import type { ServiceDeps } from './service-deps.js'
import type { UpstreamTokens, UpstreamTokenVault } from './upstream-token-vault.js'

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

export interface ProviderTokensDeps extends Pick<ServiceDeps, 'store' | 'clock'> {
  vault: UpstreamTokenVault
  /** null when no provider is configured (nobody can have signed in). */
  idp: Pick<UpstreamProvider, 'refresh'> | null
  /** Runs each refresh at the provider (metrics count them); `refused` tells a refusal from an outage. */
  aroundRefresh?: (refresh: () => Promise<UpstreamTokens>, refused: (err: unknown) => boolean) => Promise<UpstreamTokens>
}

/** How long one replica may hold the refresh lock. */
const LOCK_SECONDS = 15
/** How often, and how many times, the others look for its result (10 s in all). */
const POLL_MS = 100
const MAX_POLLS = 100
const MAX_CACHED = 10_000
/** Re-read at least this often: another replica may have dropped or refreshed the grant. */
const CACHE_SECONDS = 60

const isRefusal = (err: unknown): boolean => err instanceof UpstreamLoginError && err.refused

export function createProviderTokens ({ store, clock, vault, idp, aroundRefresh = async refresh => await refresh() }: ProviderTokensDeps): ProviderTokens {
  const instance = randomBytes(8).toString('hex')
  const cache = new Map<string, { token: string, freshUntil: number }>()
  const inFlight = new Map<string, Promise<string>>()

  const remember = (sub: string, tokens: UpstreamTokens): string => {
    if (cache.size >= MAX_CACHED) cache.clear()
    cache.set(sub, { token: tokens.access_token, freshUntil: Math.min(clock.seconds() + CACHE_SECONDS, freshUntil(tokens)) })
    return tokens.access_token
  }

  async function refresh (sub: string, held: UpstreamTokens): Promise<string> {
    const refreshToken = held.refresh_token
    if (refreshToken === undefined || idp === null) {
      throw new ProviderTokenError('reauthorize', 'The identity provider sign-in has expired; authorize again')
    }
    let next: UpstreamTokens
    try {
      next = await aroundRefresh(async () => await idp.refresh(refreshToken), isRefusal)
    } catch (err) {
      if (isRefusal(err)) {
        await vault.drop(sub)
        throw new ProviderTokenError('reauthorize', 'The identity provider no longer accepts this sign-in; authorize again')
      }
      throw new ProviderTokenError('unavailable', `The identity provider could not refresh the sign-in: ${(err as Error).message}`)
    }
    await vault.save(sub, next)
    return remember(sub, await vault.get(sub) ?? next)
  }

  async function load (sub: string): Promise<string> {
    for (let poll = 0; ; poll++) {
      const held = await vault.get(sub)
      if (held === null) throw new ProviderTokenError('reauthorize', 'No identity provider sign-in is held for this user; authorize again')
      if (freshUntil(held) > clock.seconds()) return remember(sub, held)
      const lock = `upstream-refresh:${sub}`
      if (await store.cas(lock, null, instance, LOCK_SECONDS)) {
        try {
          return await refresh(sub, held)
        } finally {
          await store.del(lock).catch(() => {})
        }
      }
      // Another replica is refreshing: its result lands in the store.
      if (poll >= MAX_POLLS) throw new ProviderTokenError('unavailable', 'Timed out waiting for the identity provider sign-in to be refreshed')
      await sleep(POLL_MS)
    }
  }

  return {
    async accessTokenFor (sub) {
      const cached = cache.get(sub)
      if (cached !== undefined && cached.freshUntil > clock.seconds()) return cached.token
      let pending = inFlight.get(sub)
      if (pending === undefined) {
        pending = load(sub).finally(() => inFlight.delete(sub))
        inFlight.set(sub, pending)
      }
      return await pending
    }
  }
}
