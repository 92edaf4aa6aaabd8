/**
 * Every kind of key the gateway stores (`<kind>:<id>`, or the bare kind for a set), and the two
 * things the stores decide by kind, kept in one table so a new kind is classified once:
 *
 * `class`, for the memory store's bounds (it bounds each class on its own and never drops one
 * kind to make room for another):
 * - `long-lived`: what users hold for days (sessions, refresh families, approvals, clients, keys,
 *   upstream tokens). Losing one logs a user out.
 * - `short-lived`: minutes-long records written only for a signed-in user (codes, code-use
 *   records, refresh locks).
 * - `anonymous`: minutes-long records any unauthenticated request can make the gateway write
 *   (consent transactions, provider-login states, per-address counters). Bounded apart, so a flood
 *   of them cannot stop signed-in users from getting codes either.
 * A kind not listed counts as anonymous: a new kind then competes with the flood instead of
 * pushing out sessions.
 *
 * `durable`, for Redis Sentinel and Cluster: kinds whose loss in a failover would surprise a user
 * (a registered client that vanishes, a code or refresh token that stops working, a consent asked
 * again, a revocation undone); their writes wait for replicas (REDIS_WAIT_REPLICAS). The rest
 * (authorization transactions, login states, sessions, locks, rate-limit counters) are cheap to redo.
 */
export type RecordClass = 'long-lived' | 'short-lived' | 'anonymous'

interface KeyKind { class: RecordClass, durable?: true }

const KEY_KINDS: Record<string, KeyKind> = {
  session: { class: 'long-lived' },
  family: { class: 'long-lived', durable: true },
  consent: { class: 'long-lived', durable: true },
  client: { class: 'long-lived', durable: true },
  keys: { class: 'long-lived', durable: true },
  upstream: { class: 'long-lived' },
  // A set (the memory store keeps sets apart from its bounded records).
  revoked: { class: 'long-lived', durable: true },
  code: { class: 'short-lived', durable: true },
  'code-used': { class: 'short-lived', durable: true },
  // Used assertion ids: written only once an assertion's signature verified; a failover that lost one would allow a replay.
  jti: { class: 'short-lived', durable: true },
  'upstream-refresh': { class: 'short-lived' }
}

function kindOf (key: string): KeyKind | undefined {
  const colon = key.indexOf(':')
  return KEY_KINDS[colon === -1 ? key : key.slice(0, colon)]
}

export function recordClass (key: string): RecordClass {
  return kindOf(key)?.class ?? 'anonymous'
}

export function isDurableKey (key: string): boolean {
  return kindOf(key)?.durable === true
}
