/**
 * What a record is, read from its key's kind (`<kind>:<id>`), so that the memory store can bound
 * each class on its own and never drop one kind to make room for another:
 * - `long-lived`: what users hold for days (sessions, refresh families, approvals, clients, keys,
 *   upstream tokens). Losing one logs a user out.
 * - `short-lived`: minutes-long records written only for a signed-in user (codes, code-use
 *   records, refresh locks).
 * - `anonymous`: minutes-long records any unauthenticated request can make the gateway write
 *   (consent transactions, provider-login states, per-address counters). Bounded apart, so a flood
 *   of them cannot stop signed-in users from getting codes either.
 * A kind not listed counts as anonymous: a new kind then competes with the flood instead of
 * pushing out sessions.
 */
export type RecordClass = 'long-lived' | 'short-lived' | 'anonymous'

const CLASS_OF_KIND: Record<string, RecordClass> = {
  session: 'long-lived',
  family: 'long-lived',
  consent: 'long-lived',
  client: 'long-lived',
  keys: 'long-lived',
  upstream: 'long-lived',
  code: 'short-lived',
  'code-used': 'short-lived',
  'upstream-refresh': 'short-lived'
}

export function recordClass (key: string): RecordClass {
  const colon = key.indexOf(':')
  return CLASS_OF_KIND[colon === -1 ? key : key.slice(0, colon)] ?? 'anonymous'
}
