/**
 * Refresh token rotation (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2) as a pure decision over the
 * family record. Each use of the current token rotates it; presenting an older token means it
 * leaked (or a client misbehaves), so the whole family is revoked. Clients that refresh twice
 * at once (several tabs, several replicas) would trip that, so the token just replaced may be
 * presented again for a short while and gets the same new pair, not a third one.
 *
 * The caller stores the record with `Store.cas` so that two replicas cannot both rotate: the
 * loser re-reads the record and lands in the grace branch.
 *
 * A family also has an absolute lifetime, counted from its creation, that rotation never
 * extends: otherwise a client refreshing now and then would keep a grant forever.
 */
import { safeEqual } from './secrets.js'

export const DEFAULT_GRACE_MS = 10_000

export interface RefreshFamily {
  familyId: string
  /** `hashSecret` of the live refresh token. */
  currentHash: string
  /** The token the live one replaced, for the grace window. */
  previous?: {
    hash: string
    /** ms since the epoch. */
    rotatedAt: number
    /** The token response issued when it was rotated, encrypted (it holds the new refresh token). */
    result: string
  }
  revoked?: boolean
  /**
   * ms since the epoch. Absent in families written before the absolute lifetime existed: their
   * age is unknown, so they count as past it (the user authorizes again, once).
   */
  createdAt?: number
}

export type RefreshDecision =
  /** Mint a new pair, then store `rotateFamily(...)`. */
  | { action: 'rotate' }
  /** A concurrent duplicate: answer with this stored result again. */
  | { action: 'replay', result: string }
  /** Reuse of a rotated token: revoke every token of the family, answer invalid_grant. */
  | { action: 'revoke_family', reason: string }
  /** invalid_grant; nothing more to revoke. */
  | { action: 'reject', reason: string }

/** `maxLifetimeMs`: the family's absolute lifetime; past it (or of unknown age) it is revoked. */
export function decideRefresh (
  family: RefreshFamily | undefined,
  presentedHash: string,
  now: number,
  graceMs = DEFAULT_GRACE_MS,
  maxLifetimeMs?: number
): RefreshDecision {
  if (family === undefined) return { action: 'reject', reason: 'refresh token is unknown or expired' }
  if (family.revoked === true) return { action: 'reject', reason: 'refresh token was revoked' }
  if (maxLifetimeMs !== undefined && (family.createdAt === undefined || now >= family.createdAt + maxLifetimeMs)) {
    return { action: 'revoke_family', reason: 'this grant has reached its maximum lifetime; authorize again' }
  }
  if (safeEqual(presentedHash, family.currentHash)) return { action: 'rotate' }
  const previous = family.previous
  if (previous !== undefined && safeEqual(presentedHash, previous.hash)) {
    if (now - previous.rotatedAt <= graceMs) return { action: 'replay', result: previous.result }
    return { action: 'revoke_family', reason: 'refresh token was already used; every token of this grant is revoked' }
  }
  return { action: 'revoke_family', reason: 'refresh token was rotated out; every token of this grant is revoked' }
}

/** The family after rotating to `newHash`; `result` is what a duplicate in the grace window gets. */
export function rotateFamily (family: RefreshFamily, newHash: string, result: string, now: number): RefreshFamily {
  return {
    familyId: family.familyId,
    currentHash: newHash,
    previous: { hash: family.currentHash, rotatedAt: now, result },
    createdAt: family.createdAt
  }
}

export function revokeFamily (family: RefreshFamily): RefreshFamily {
  return { familyId: family.familyId, currentHash: family.currentHash, revoked: true, createdAt: family.createdAt }
}

/**
 * Seconds to store the family for: the sliding TTL (restarted by each rotation), cut at what
 * is left of the absolute lifetime. At least 1, since a store TTL of 0 would mean forever.
 */
export function familyTtl (family: RefreshFamily, now: number, slidingTtlSeconds: number, maxLifetimeSeconds: number): number {
  if (family.createdAt === undefined) return 1
  const left = Math.floor((family.createdAt + maxLifetimeSeconds * 1000 - now) / 1000)
  return Math.max(1, Math.min(slidingTtlSeconds, left))
}
