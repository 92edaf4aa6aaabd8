/**
 * The grant lifecycle, in one place: authorization codes (issue, redeem, replay → revoke what the
 * code issued), refresh-token families (rotate under compare-and-swap, grace window for
 * concurrent duplicates, reuse → revoke the family, absolute lifetime), the allow-lists checked
 * again at every use, RFC 8707 narrowing, and minting.
 *
 * The token endpoint calls `exchange`, which dispatches on the grant type: a new grant is one
 * more method here and one more line in `exchange` (and its shape in src/oauth/token-request.ts).
 */
import { gatewayScopes, type RouteConfig } from '../config/config-file.js'
import { checkAllowLists, type UpstreamIdentity } from '../oauth/allow-list.js'
import { OAuthError } from '../oauth/errors.js'
import { verifyPkce } from '../oauth/pkce.js'
import { decideRefresh, familyTtl, revokeFamily, rotateFamily, type RefreshFamily } from '../oauth/refresh-rotation.js'
import { checkClientOnRoute, resolveResource } from '../oauth/resource.js'
import { formatScope, knownScopes, narrowScopes } from '../oauth/scopes.js'
import { hashSecret, randomToken, safeEqual } from '../oauth/secrets.js'
import type { TokenRequest } from '../oauth/token-request.js'
import { KEY_KINDS, type CodeGrant, type CodeUse, type FamilyRecord } from '../store/storage-schema.js'
import type { MintOptions } from '../tokens/token-service.js'
import { clientCredentialsGrant } from './client-credentials-grant.js'
import type { KnownClient } from './clients.js'
import { jwtBearerGrant } from './jwt-bearer-grant.js'
import type { TokenResponse } from './route-token.js'
import type { ServiceDeps } from './service-deps.js'
import type { UpstreamTokenVault } from './upstream-token-vault.js'

export type { CodeGrant } from '../store/storage-schema.js'

export type { TokenResponse } from './route-token.js'

/** The grant-type-specific part of a token request, after client authentication. */
export type GrantRequest<G extends TokenRequest['grantType']> = Omit<Extract<TokenRequest, { grantType: G }>, 'grantType' | 'client'>

/** Access tokens as the grants need them: minted here, revoked on every replica. */
export interface AccessTokenIssuer {
  mint: (opts: MintOptions) => { token: string, jti: string, expiresAt: number }
  revoke: (jti: string, expiresAt: number) => Promise<void>
}

export interface Grants {
  issueCode: (grant: CodeGrant) => Promise<string>
  /** The token endpoint: one grant per `grant_type`. */
  exchange: (client: KnownClient, request: TokenRequest) => Promise<TokenResponse>
  redeemCode: (client: KnownClient, request: GrantRequest<'authorization_code'>) => Promise<TokenResponse>
  refresh: (client: KnownClient, request: GrantRequest<'refresh_token'>) => Promise<TokenResponse>
  /** RFC 7009: revokes the refresh token's family when it is one of this client's; else nothing. */
  revokeRefreshToken: (client: KnownClient, token: string) => Promise<void>
  /** RFC 6749 §4.4: a pre-registered machine client, as itself (client-credentials-grant.ts). */
  clientCredentials: (client: KnownClient, request: GrantRequest<'client_credentials'>) => TokenResponse
  /** SEP-990: an ID-JAG from a trusted enterprise IdP (jwt-bearer-grant.ts). */
  jwtBearer: (client: KnownClient, request: GrantRequest<'urn:ietf:params:oauth:grant-type:jwt-bearer'>) => Promise<TokenResponse>
}

export interface GrantsDeps extends ServiceDeps {
  tokens: AccessTokenIssuer
  /** provider_token routes: a family lives only while the provider sign-in behind it does. */
  vault: Pick<UpstreamTokenVault, 'get'>
}

const MAX_CAS_ATTEMPTS = 8
const GRACE_CONTEXT = 'refresh-grace'

function invalidGrant (description: string): OAuthError {
  return new OAuthError('invalid_grant', description)
}

function busy (description: string): OAuthError {
  return new OAuthError('temporarily_unavailable', description, { status: 503, headers: { 'retry-after': '1' } })
}

export function createGrants ({ records, clock, keys, config, tokens, vault }: GrantsDeps): Grants {
  const { env, routes, routeByPattern, globalAllow, trustedIdps } = config
  const supportedScopes = gatewayScopes(routes)
  const sealer = keys.sealer
  const FAMILY = KEY_KINDS.family
  const CODE = KEY_KINDS.code
  const CODE_USED = KEY_KINDS['code-used']

  function routeOf (pattern: string): RouteConfig {
    const route = routeByPattern.get(pattern)
    // A route removed from config.yaml since the grant: its tokens open nothing any more.
    if (route === undefined) throw invalidGrant('the MCP server of this grant is no longer served')
    return route
  }

  /**
   * Why the current global and route allow-lists no longer admit whom the grant was issued to
   * (undefined: they do). An operator removing someone takes effect at their next refresh.
   */
  function refusal (identity: UpstreamIdentity | undefined, route: RouteConfig): string | undefined {
    if (identity === undefined) return 'this grant carries no identity to check; authorize again'
    const decision = checkAllowLists(identity, globalAllow, { emails: route.allowedEmails, domains: route.allowedDomains })
    return decision.allowed ? undefined : decision.reason
  }

  /** A code's or family's identity; undefined when written before identities were kept. */
  const identityOf = (record: CodeGrant | FamilyRecord): UpstreamIdentity | undefined => typeof record.emailVerified === 'boolean'
    ? { sub: record.sub, email: record.email, emailVerified: record.emailVerified, hostedDomain: record.hostedDomain }
    : undefined
  const ttlOf = (family: RefreshFamily, now: number): number => familyTtl(family, now, env.REFRESH_TOKEN_TTL, env.REFRESH_TOKEN_MAX_LIFETIME)

  /** A resource named at /token must be the grant's route (RFC 8707 §2.2: may narrow, never widen). */
  function checkResource (resource: string | string[] | undefined, route: RouteConfig): void {
    if (resource === undefined) return
    if (resolveResource(resource, routes) !== route) {
      throw new OAuthError('invalid_target', `this grant is for ${route.resourceUrl} only`)
    }
  }

  function mint (grant: Pick<FamilyRecord, 'clientId' | 'sub' | 'email'>, route: RouteConfig, scopes: string[]): { response: TokenResponse, jti: string, exp: number } {
    const { token, jti, expiresAt } = tokens.mint({ sub: grant.sub, email: grant.email, clientId: grant.clientId, audience: route.resourceUrl, scopes })
    return {
      response: { access_token: token, token_type: 'Bearer', expires_in: expiresAt - clock.seconds(), scope: formatScope(scopes) },
      jti,
      exp: expiresAt
    }
  }

  const newRefreshToken = (familyId: string): string => `${familyId}.${randomToken(32)}`
  const liveTokens = (list: Array<[string, number]>): Array<[string, number]> => {
    const now = clock.seconds()
    return list.filter(([, exp]) => exp > now)
  }

  /** Marks the family revoked (atomically) and revokes its live access tokens everywhere. */
  async function revokeFamilyById (familyId: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const stored = await records.read(FAMILY, familyId)
      if (stored === undefined || stored.value.revoked === true) return
      const record = stored.value
      const next: FamilyRecord = { ...record, ...revokeFamily(record), previous: undefined, accessTokens: [] }
      if (await records.cas(FAMILY, familyId, stored.raw, next, ttlOf(next, clock.now()))) {
        for (const [jti, exp] of liveTokens(record.accessTokens)) await tokens.revoke(jti, exp)
        return
      }
    }
    throw busy('the grant is changing concurrently; retry')
  }

  /** A new family for a redeemed code; the code's first access token is its first member. */
  async function openFamily (grant: CodeGrant, first: [string, number]): Promise<{ familyId: string, refreshToken: string }> {
    const familyId = randomToken(16)
    const refreshToken = newRefreshToken(familyId)
    const record: FamilyRecord = {
      familyId,
      currentHash: hashSecret(refreshToken),
      clientId: grant.clientId,
      sub: grant.sub,
      email: grant.email,
      emailVerified: grant.emailVerified,
      hostedDomain: grant.hostedDomain,
      resource: grant.resource,
      scopes: grant.scopes,
      accessTokens: [first],
      createdAt: clock.now()
    }
    await records.set(FAMILY, familyId, record, ttlOf(record, clock.now()))
    return { familyId, refreshToken }
  }

  /** RFC 6749 §4.1.2 / OAuth 2.1 §4.1.3: a replayed code means it leaked; what it issued goes. */
  async function revokeCodeUse (use: CodeUse): Promise<void> {
    await tokens.revoke(use.jti, use.exp)
    if (use.familyId !== undefined) await revokeFamilyById(use.familyId)
  }

  const mintFor = tokens.mint.bind(tokens)
  const grants: Grants = {
    clientCredentials: clientCredentialsGrant({ routes, mint: mintFor, now: clock.seconds }),
    jwtBearer: jwtBearerGrant({ issuer: env.BASE_URL, routes, globalAllow, trustedIdps, records, mint: mintFor, now: clock.seconds }),

    async issueCode (grant) {
      const code = randomToken(32)
      await records.set(CODE, hashSecret(code), grant)
      return code
    },

    async exchange (client, request) {
      switch (request.grantType) {
        case 'authorization_code': return await grants.redeemCode(client, request)
        case 'refresh_token': return await grants.refresh(client, request)
        case 'client_credentials': return grants.clientCredentials(client, request)
        case 'urn:ietf:params:oauth:grant-type:jwt-bearer': return await grants.jwtBearer(client, request)
      }
    },

    async redeemCode (client, request) {
      const hash = hashSecret(request.code)
      const grant = await records.take(CODE, hash)
      if (grant === undefined) {
        const use = await records.get(CODE_USED, hash)
        if (use !== undefined) {
          await revokeCodeUse(use)
          throw invalidGrant('authorization code was already used; the tokens it issued are revoked')
        }
        throw invalidGrant('authorization code is unknown or expired')
      }
      if (grant.clientId !== client.client_id) throw invalidGrant('authorization code was issued to another client')
      if (grant.redirectUri !== request.redirectUri) throw invalidGrant('redirect_uri differs from the authorization request')
      verifyPkce(request.codeVerifier, grant.codeChallenge)
      const route = routeOf(grant.resource)
      checkClientOnRoute(route, client.client_id)
      const refused = refusal(identityOf(grant), route)
      if (refused !== undefined) throw invalidGrant(refused)
      checkResource(request.resource, route)

      const { response, jti, exp } = mint(grant, route, grant.scopes)
      const use: CodeUse = { jti, exp }
      if (client.grant_types.includes('refresh_token')) {
        const family = await openFamily(grant, [jti, exp])
        response.refresh_token = family.refreshToken
        use.familyId = family.familyId
      }
      await records.set(CODE_USED, hash, use)
      return response
    },

    async refresh (client, request) {
      const familyId = request.refreshToken.split('.')[0]
      if (familyId === request.refreshToken) throw invalidGrant('refresh token is unknown or expired')
      if (!client.grant_types.includes('refresh_token')) {
        throw new OAuthError('unauthorized_client', 'this client did not register the refresh_token grant')
      }
      const presented = hashSecret(request.refreshToken)
      // Two replicas may rotate at once: the compare-and-swap lets one win; the other re-reads
      // and finds itself in the grace window.
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const stored = await records.read(FAMILY, familyId)
        const record = stored?.value
        if (record !== undefined && record.clientId !== client.client_id) throw invalidGrant('refresh token was issued to another client')
        const now = clock.now()
        const decision = decideRefresh(record, presented, now, env.REFRESH_GRACE_MS, env.REFRESH_TOKEN_MAX_LIFETIME * 1000)
        switch (decision.action) {
          case 'reject':
            throw invalidGrant(decision.reason)
          case 'replay': {
            const replayed = sealer.open(decision.result, GRACE_CONTEXT)
            // Sealed with a key no longer configured: as if the duplicate came after the window.
            if (replayed === undefined) throw invalidGrant('refresh token was already used')
            return JSON.parse(replayed) as TokenResponse
          }
          case 'revoke_family':
            await revokeFamilyById(familyId)
            throw invalidGrant(decision.reason)
        }
        const current = record as FamilyRecord
        const route = routeOf(current.resource)
        // A client removed from allowed_clients since: its family ends here.
        try {
          checkClientOnRoute(route, client.client_id)
        } catch (err) {
          await revokeFamilyById(familyId)
          throw err
        }
        const refused = refusal(identityOf(current), route)
        if (refused !== undefined) {
          // Revoked for good: allowing the user again later takes a new login, not this family.
          await revokeFamilyById(familyId)
          throw invalidGrant(refused)
        }
        // The provider sign-in behind a provider_token route is gone: only a new login restores it.
        if (route.upstream.auth === 'provider_token' && await vault.get(current.sub) === null) {
          await revokeFamilyById(familyId)
          throw invalidGrant('the identity provider sign-in has ended; authorize again')
        }
        checkResource(request.resource, route)
        const scopes = narrowScopes(knownScopes(request.scopes, supportedScopes), current.scopes)
        const { response, jti, exp } = mint(current, route, scopes)
        const refreshToken = newRefreshToken(familyId)
        response.refresh_token = refreshToken
        const next: FamilyRecord = {
          ...current,
          ...rotateFamily(current, hashSecret(refreshToken), sealer.seal(JSON.stringify(response), GRACE_CONTEXT), now),
          accessTokens: [...liveTokens(current.accessTokens), [jti, exp]]
        }
        // Never past the absolute lifetime: rotation restarts the sliding TTL only up to it.
        if (await records.cas(FAMILY, familyId, stored?.raw ?? null, next, ttlOf(next, now))) return response
      }
      throw busy('the refresh token is being used concurrently; retry')
    },

    async revokeRefreshToken (client, token) {
      const familyId = token.split('.')[0]
      const record = await records.get(FAMILY, familyId)
      if (record === undefined) return
      const hash = hashSecret(token)
      const ours = safeEqual(record.currentHash, hash) || (record.previous !== undefined && safeEqual(record.previous.hash, hash))
      if (ours && record.clientId === client.client_id) await revokeFamilyById(familyId)
    }
  }
  return grants
}
