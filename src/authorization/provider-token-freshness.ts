import type { UpstreamTokens } from './upstream-token-vault.js'

/** Refresh at most this long before the provider's expiry. */
const MAX_MARGIN_SECONDS = 60

/**
 * Seconds before expiry at which a provider token counts as stale: the smaller of 60 s and a
 * third of its lifetime, so that a short-lived token (10 s) is not stale the moment it arrives
 * (which made every call refresh it). A token of unknown lifetime (older records) gets 60 s.
 */
export function refreshMargin (tokens: UpstreamTokens): number {
  if (tokens.expires_at === undefined || tokens.obtained_at === undefined) return MAX_MARGIN_SECONDS
  return Math.min(MAX_MARGIN_SECONDS, Math.max(0, tokens.expires_at - tokens.obtained_at) / 3)
}

/** Until when (seconds) the token may be sent without refreshing; Infinity when it never expires. */
export function freshUntil (tokens: UpstreamTokens): number {
  return tokens.expires_at === undefined ? Infinity : tokens.expires_at - refreshMargin(tokens)
}
