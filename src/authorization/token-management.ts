/**
 * Revocation (RFC 7009) and introspection (RFC 7662) of the gateway's own tokens. Both act on
 * or reveal only the authenticated client's tokens; anything else is answered as unknown.
 */
import { OAuthError } from '../oauth/errors.js'
import type { AccessClaims } from '../tokens/token-service.js'
import type { KnownClient } from './clients.js'
import type { Grants } from './grants.js'
import type { ServiceDeps } from './service-deps.js'

export type Introspection = { active: false } | ({ active: true, token_type: 'Bearer' } & AccessClaims)

export interface TokenManagement {
  /** RFC 7009 §2.2: unknown, foreign and already revoked tokens are all fine (nothing to say). */
  revoke: (client: KnownClient, token: string) => Promise<void>
  /** `confidential`: the client proved a secret (RFC 7662 §2.1: a public client proves nothing). */
  introspect: (client: KnownClient, token: string, confidential: boolean) => Introspection
}

export interface TokenManagementDeps extends Pick<ServiceDeps, 'config'> {
  tokens: {
    /** Throws when the token is not a live one of this gateway for `audience`. */
    verify: (token: string, audience: string) => AccessClaims
    revoke: (jti: string, expiresAt: number) => Promise<void>
  }
  grants: Pick<Grants, 'revokeRefreshToken'>
}

/** A JWT has two dots; the gateway's refresh tokens have one (family id, secret). */
const isJwt = (token: string): boolean => token.split('.').length === 3

export function createTokenManagement ({ config, tokens, grants }: TokenManagementDeps): TokenManagement {
  /** The claims of a live access token of this gateway, for whichever route it was minted. */
  function accessClaims (token: string): AccessClaims | undefined {
    for (const route of config.routes) {
      try {
        return tokens.verify(token, route.resourceUrl)
      } catch {
        // Not for this route (or not valid at all): try the next.
      }
    }
    return undefined
  }

  return {
    async revoke (client, token) {
      if (!isJwt(token)) return await grants.revokeRefreshToken(client, token)
      const claims = accessClaims(token)
      if (claims !== undefined && claims.client_id === client.client_id) await tokens.revoke(claims.jti, claims.exp)
    },

    introspect (client, token, confidential) {
      if (!confidential) throw new OAuthError('invalid_client', 'introspection is for confidential clients (authenticate with the client secret)')
      const claims = isJwt(token) ? accessClaims(token) : undefined
      if (claims === undefined || claims.client_id !== client.client_id) return { active: false }
      return { active: true, token_type: 'Bearer', ...claims }
    }
  }
}
