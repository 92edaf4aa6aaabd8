import type { AccessClaims } from './token-service.js'

/**
 * TokenService hands back the same claims object for a token it has accepted before, so its
 * scope string is split once per token, not once per request (and once more by the tool interceptor).
 */
const split = new WeakMap<AccessClaims, readonly string[]>()

/** The scopes a verified token grants; callers must not change the array. */
export function grantedScopes (claims: AccessClaims): readonly string[] {
  let scopes = split.get(claims)
  if (scopes === undefined) split.set(claims, scopes = claims.scope.split(' '))
  return scopes
}
