import { KEY_KINDS } from '../store/storage-schema.js'
import type { UpstreamTokens as ProviderTokens } from '../upstream/provider.js'
import type { ServiceDeps } from './service-deps.js'

/** The provider's tokens, and when the gateway obtained them (seconds; absent in older records). */
export type UpstreamTokens = ProviderTokens & { obtained_at?: number }

/** The users' tokens at the identity provider, sealed in the store (`upstream:<sub>`). */
export interface UpstreamTokenVault {
  save: (sub: string, tokens: UpstreamTokens) => Promise<void>
  /** null when none are held (or they no longer open: ENCRYPTION_KEY changed). */
  get: (sub: string) => Promise<UpstreamTokens | null>
  /** Forgets them (the provider refused to refresh: the user must log in again). */
  drop: (sub: string) => Promise<void>
  hasRefreshToken: (sub: string) => Promise<boolean>
}

export function createUpstreamTokenVault ({ records, config, clock }: Pick<ServiceDeps, 'records' | 'config' | 'clock'>): UpstreamTokenVault {
  const kind = KEY_KINDS.upstream
  const vault: UpstreamTokenVault = {
    async save (sub, tokens) {
      // When they were obtained: the refresh margin is a share of their lifetime.
      tokens = { obtained_at: clock.seconds(), ...tokens }
      // Providers send a refresh token on the first consent only: keep the one held.
      if (tokens.refresh_token === undefined) {
        const held = await vault.get(sub)
        if (held?.refresh_token !== undefined) tokens = { ...tokens, refresh_token: held.refresh_token }
      }
      await records.set(kind, sub, tokens, config.env.REFRESH_TOKEN_TTL)
    },
    get: async sub => await records.get(kind, sub) ?? null,
    drop: async sub => { await records.del(kind, sub) },
    hasRefreshToken: async sub => (await vault.get(sub))?.refresh_token !== undefined
  }
  return vault
}
