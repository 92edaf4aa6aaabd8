/**
 * Enterprise-managed authorization (SEP-990): a confidential client presents an ID-JAG its
 * user's enterprise IdP issued by token exchange; the gateway checks it (`src/oauth/id-jag.ts`),
 * spends its `jti`, applies the allow-lists to the asserted identity and mints a route token.
 */
import { createRemoteJWKSet } from 'jose'
import { gatewayScopes, type RouteConfig, type TrustedIdp } from '../config/config-file.js'
import { checkAllowLists, type AllowList } from '../oauth/allow-list.js'
import { OAuthError } from '../oauth/errors.js'
import { verifyIdJag, type TrustedIssuer } from '../oauth/id-jag.js'
import { checkClientOnRoute, resolveResource } from '../oauth/resource.js'
import { JWT_BEARER_GRANT } from '../oauth/token-request.js'
import { knownScopes } from '../oauth/scopes.js'
import type { RecordStore } from '../store/records.js'
import { checkNoProviderLogin, grantWithin, tokenResponse, type GrantClient, type Mint, type TokenResponse } from './route-token.js'
import { useOnce } from './single-use.js'

export interface JwtBearerRequest {
  assertion: string
  scopes: string[]
  resource?: string | string[]
}

export interface JwtBearerDeps {
  issuer: string
  routes: RouteConfig[]
  globalAllow: AllowList
  trustedIdps: TrustedIdp[]
  records: RecordStore
  mint: Mint
  now: () => number
}

export function jwtBearerGrant (deps: JwtBearerDeps): (client: GrantClient, request: JwtBearerRequest) => Promise<TokenResponse> {
  const supported = gatewayScopes(deps.routes)
  // Keys fetched at most every 5 s per IdP and cached (jose), redirects not followed.
  const trusted = new Map<string, TrustedIssuer>(deps.trustedIdps.map(idp => [idp.issuer, {
    issuer: idp.issuer,
    keys: createRemoteJWKSet(new URL(idp.jwksUri), { timeoutDuration: 5000 }),
    claims: idp.claims
  }]))
  return async (client, request) => {
    if (!client.grant_types.includes(JWT_BEARER_GRANT)) throw new OAuthError('unauthorized_client', `this client may not use the ${JWT_BEARER_GRANT} grant`)
    const now = deps.now()
    const claims = await verifyIdJag(request.assertion, { audience: deps.issuer, clientId: client.client_id, trusted: issuer => trusted.get(issuer), now })
    let route: RouteConfig
    try {
      route = resolveResource(claims.resource, deps.routes)
    } catch {
      throw new OAuthError('invalid_grant', 'assertion refused: its resource is not an MCP server of this gateway')
    }
    if (request.resource !== undefined && resolveResource(request.resource, deps.routes) !== route) {
      throw new OAuthError('invalid_target', `the assertion is for ${route.resourceUrl} only`)
    }
    checkClientOnRoute(route, client.client_id)
    checkNoProviderLogin(route)
    // The operator's allow-lists apply to whom the IdP asserts; without any, the IdP decides.
    const lists = [deps.globalAllow, { emails: route.allowedEmails, domains: route.allowedDomains }]
    if (lists.some(l => l.emails.length + l.domains.length > 0)) {
      const decision = checkAllowLists({ sub: claims.sub, email: claims.email, emailVerified: claims.emailVerified }, lists[0], lists[1])
      if (!decision.allowed) throw new OAuthError('invalid_grant', decision.reason)
    }
    // The intersection of what the client asks and what the IdP approved.
    const asserted = claims.scopes
    const known = knownScopes(request.scopes, supported)
    const requested = asserted === undefined ? known : known.filter(s => asserted.includes(s))
    if (known.length > 0 && requested.length === 0) throw new OAuthError('invalid_scope', 'none of the scopes asked for was approved by the identity provider')
    const scopes = grantWithin(requested, asserted, route)
    if (!await useOnce(deps.records, `idp:${claims.iss}`, claims.jti, claims.exp, now)) {
      throw new OAuthError('invalid_grant', 'assertion refused: its jti was already used')
    }
    // Namespaced by issuer: an IdP's `sub` must never match a provider login's or another IdP's.
    const sub = `${claims.iss}#${claims.sub}`
    // Only a verified address reaches tool-policy grants and upstream identity tokens.
    const email = claims.emailVerified ? claims.email : undefined
    return tokenResponse(deps.mint, { sub, email, clientId: client.client_id, audience: route.resourceUrl, scopes }, now)
  }
}
