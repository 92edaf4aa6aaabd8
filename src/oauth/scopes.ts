/** Scope strings (RFC 6749 §3.3): space-delimited, order-free sets of tokens. */
import { OAuthError } from './errors.js'

/** scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/
const MAX_SCOPES = 50

/** Parses a `scope` parameter into distinct tokens; absent or empty gives []. */
export function parseScope (scope: string | undefined): string[] {
  if (scope === undefined) return []
  const tokens = scope.split(' ').filter(token => token !== '')
  for (const token of tokens) {
    if (!SCOPE_TOKEN.test(token)) throw new OAuthError('invalid_scope', `malformed scope ${JSON.stringify(token)}`)
  }
  const distinct = [...new Set(tokens)]
  if (distinct.length > MAX_SCOPES) throw new OAuthError('invalid_scope', `more than ${MAX_SCOPES} scopes requested`)
  return distinct
}

export function formatScope (scopes: readonly string[]): string {
  return scopes.join(' ')
}

/**
 * Asks for a refresh token (OpenID Connect §11, MCP 2026-07-28). Advertised in the
 * authorization-server metadata only: it is about the grant, not about any resource.
 */
export const OFFLINE_ACCESS = 'offline_access'

/**
 * The requested scopes the gateway knows. RFC 6749 §3.3 lets a server grant less than asked, and
 * clients ask for `openid`, `email`, `profile` or `offline_access` out of habit: failing them
 * would fail the login for nothing. The token response's `scope` then says what was granted.
 */
export function knownScopes (requested: readonly string[], supported: readonly string[]): string[] {
  const have = new Set(supported)
  return requested.filter(scope => have.has(scope))
}

/**
 * The scopes of a refreshed token: RFC 6749 §6 lets a refresh ask for fewer than were granted,
 * never more. None requested means all granted.
 */
export function narrowScopes (requested: readonly string[], granted: readonly string[]): string[] {
  if (requested.length === 0) return [...granted]
  const wider = scopeDifference(requested, granted)
  if (wider.length > 0) {
    throw new OAuthError('invalid_scope', `scope exceeds what was granted: ${formatScope(wider)}`)
  }
  return [...requested]
}

/** Scopes in `a` and not in `b`: what a step-up consent asks the user for. */
export function scopeDifference (a: readonly string[], b: readonly string[]): string[] {
  const have = new Set(b)
  return a.filter(scope => !have.has(scope))
}
