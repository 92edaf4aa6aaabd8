/**
 * What the grants without a user login (client credentials, ID-JAG) share: which route a client
 * may get a token for, which scopes, and the token response (no refresh token: the client can
 * always present its credentials or a new assertion again).
 */
import { grantableScopes, type RouteConfig } from '../config/config-file.js'
import { OAuthError } from '../oauth/errors.js'
import { scopeDifference } from '../oauth/scopes.js'
import type { MintOptions } from '../tokens/token-service.js'

export interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  scope: string
  refresh_token?: string
}

/** As much of a client as these grants read. */
export interface GrantClient {
  client_id: string
  grant_types: readonly string[]
  /** Pre-registered machine clients: the routes they may name, and the scopes there. */
  allowed_routes?: string[]
  allowed_scopes?: string[]
}

export type Mint = (opts: MintOptions) => { token: string, expiresAt: number }

/** A provider_token route sends the user's provider token upstream: only a provider login has one. */
export function checkNoProviderLogin (route: RouteConfig): void {
  if (route.upstream.auth === 'provider_token') {
    throw new OAuthError('invalid_target', `${route.resourceUrl} needs a sign-in at the identity provider; use the authorization code flow`)
  }
}

/**
 * The scopes to grant: those asked for, within `allowance` and what the route grants (undefined
 * allowance: all the route grants, its tools' step-up scopes included). Nothing asked: the
 * allowance, or the route's own scopes. A gateway scope asked beyond it is `invalid_scope`.
 */
export function grantWithin (requested: readonly string[], allowance: readonly string[] | undefined, route: RouteConfig): string[] {
  const grantable = grantableScopes(route)
  const allowed = (allowance ?? grantable).filter(s => grantable.includes(s))
  if (requested.length === 0) {
    const granted = (allowance ?? route.scopes).filter(s => grantable.includes(s))
    if (granted.length === 0) throw new OAuthError('invalid_scope', `no scope of ${route.resourceUrl} can be granted`)
    return granted
  }
  const beyond = scopeDifference(requested, allowed)
  if (beyond.length > 0) throw new OAuthError('invalid_scope', `scope beyond what this client may get: ${beyond.join(' ')}`)
  return [...requested]
}

export function tokenResponse (mint: Mint, opts: MintOptions, now: number): TokenResponse {
  const { token, expiresAt } = mint(opts)
  return { access_token: token, token_type: 'Bearer', expires_in: expiresAt - now, scope: opts.scopes.join(' ') }
}
