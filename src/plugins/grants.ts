import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { gatewayScopes, type RouteConfig } from '../config/config-file.js'
import { checkAllowLists, type UpstreamIdentity } from '../oauth/allow-list.js'
import { OAuthError } from '../oauth/errors.js'
import { verifyPkce } from '../oauth/pkce.js'
import { decideRefresh, familyTtl, revokeFamily, rotateFamily, type RefreshFamily } from '../oauth/refresh-rotation.js'
import { checkClientOnRoute, resolveResource } from '../oauth/resource.js'
import { formatScope, knownScopes, narrowScopes } from '../oauth/scopes.js'
import { seal, unseal } from '../oauth/sealed.js'
import { hashSecret, randomToken, safeEqual } from '../oauth/secrets.js'
import { clientCredentialsGrant, type ClientCredentialsRequest } from '../authorization/client-credentials-grant.js'
import { jwtBearerGrant, type JwtBearerRequest } from '../authorization/jwt-bearer-grant.js'
import type { TokenResponse } from '../authorization/route-token.js'
import type { KnownClient } from './clients.js'

/** Who a grant was issued to (email as the allow-lists admitted it): checked again at every use. */
export interface GrantIdentity extends UpstreamIdentity {
  email: string
}

/** What an authorization code stands for; bound to all of it at /token. */
export interface CodeGrant extends GrantIdentity {
  clientId: string
  redirectUri: string
  codeChallenge: string
  /** The route's pattern. */
  resource: string
  scopes: string[]
}

export interface CodeRedemption {
  code: string
  redirectUri: string
  codeVerifier: string
  resource?: string | string[]
}

export interface RefreshRequest {
  refreshToken: string
  scopes: string[]
  resource?: string | string[]
}

export interface Grants {
  issueCode: (grant: CodeGrant) => Promise<string>
  redeemCode: (client: KnownClient, request: CodeRedemption) => Promise<TokenResponse>
  refresh: (client: KnownClient, request: RefreshRequest) => Promise<TokenResponse>
  /** RFC 7009: revokes the refresh token's family when it is one of this client's; else nothing. */
  revokeRefreshToken: (client: KnownClient, token: string) => Promise<void>
  /** RFC 6749 §4.4: a pre-registered machine client, as itself. */
  clientCredentials: (client: KnownClient, request: ClientCredentialsRequest) => TokenResponse
  /** SEP-990: an ID-JAG from a trusted enterprise IdP. */
  jwtBearer: (client: KnownClient, request: JwtBearerRequest) => Promise<TokenResponse>
}

declare module 'fastify' {
  interface FastifyInstance {
    grants: Grants
  }
}

/**
 * A refresh family in the store: the rotation state plus the grant it carries. Families written
 * before identities were kept lack `emailVerified` and `hostedDomain` (and `createdAt`, which
 * already sends them to a new login).
 */
interface FamilyRecord extends RefreshFamily, Omit<GrantIdentity, 'emailVerified'> {
  clientId: string
  emailVerified?: boolean
  resource: string
  /** Granted at the code; refreshes may narrow the access token, never this. */
  scopes: string[]
  /** Access tokens of the family still alive, revoked with it: [jti, exp]. */
  accessTokens: Array<[string, number]>
}

/** What a redeemed code issued, kept so a replay of the code can revoke it. */
interface CodeUse { familyId?: string, jti: string, exp: number }

const CODE_TTL = 300
/** Longer than a code lives, so every replay of a live code is caught. */
const CODE_USE_TTL = 3600
const MAX_CAS_ATTEMPTS = 8
const GRACE_CONTEXT = 'refresh-grace'

function invalidGrant (description: string): OAuthError {
  return new OAuthError('invalid_grant', description)
}

async function grantsPlugin (fastify: FastifyInstance): Promise<void> {
  const { env, routes, routeByPattern, globalAllow, trustedIdps } = fastify.config
  const { store, tokens } = fastify
  const key = fastify.keys.encryptionKey
  const supportedScopes = gatewayScopes(routes)

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

  /** A family's identity; undefined for a family written before identities were kept. */
  const identityOf = (record: FamilyRecord): UpstreamIdentity | undefined => typeof record.emailVerified === 'boolean'
    ? { sub: record.sub, email: record.email, emailVerified: record.emailVerified, hostedDomain: record.hostedDomain }
    : undefined
  const ttlOf = (family: RefreshFamily, now = Date.now()): number => familyTtl(family, now, env.REFRESH_TOKEN_TTL, env.REFRESH_TOKEN_MAX_LIFETIME)

  /** A resource named at /token must be the grant's route (RFC 8707 §2.2: may narrow, never widen). */
  function checkResource (resource: string | string[] | undefined, route: RouteConfig): void {
    if (resource === undefined) return
    if (resolveResource(resource, routes) !== route) {
      throw new OAuthError('invalid_target', `this grant is for ${route.resourceUrl} only`)
    }
  }

  function mint (record: Pick<FamilyRecord, 'clientId' | 'sub' | 'email'>, route: RouteConfig, scopes: string[]): { response: TokenResponse, jti: string, exp: number } {
    const { token, jti, expiresAt } = tokens.mint({ sub: record.sub, email: record.email, clientId: record.clientId, audience: route.resourceUrl, scopes })
    return {
      response: { access_token: token, token_type: 'Bearer', expires_in: expiresAt - Math.floor(Date.now() / 1000), scope: formatScope(scopes) },
      jti,
      exp: expiresAt
    }
  }

  const newRefreshToken = (familyId: string): string => `${familyId}.${randomToken(32)}`
  const familyKey = (familyId: string): string => `family:${familyId}`
  const liveTokens = (list: Array<[string, number]>): Array<[string, number]> => {
    const now = Math.floor(Date.now() / 1000)
    return list.filter(([, exp]) => exp > now)
  }

  /** Marks the family revoked (atomically) and revokes its live access tokens everywhere. */
  async function revokeFamilyById (familyId: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const raw = await store.get(familyKey(familyId))
      if (raw === null) return
      const record = JSON.parse(raw) as FamilyRecord
      if (record.revoked === true) return
      const next: FamilyRecord = { ...record, ...revokeFamily(record), previous: undefined, accessTokens: [] }
      if (await store.cas(familyKey(familyId), raw, JSON.stringify(next), ttlOf(next))) {
        for (const [jti, exp] of liveTokens(record.accessTokens)) await tokens.revoke(jti, exp)
        return
      }
    }
    throw new OAuthError('temporarily_unavailable', 'the grant is changing concurrently; retry', { status: 503, headers: { 'retry-after': '1' } })
  }

  const now = (): number => Math.floor(Date.now() / 1000)
  const mintFor = tokens.mint.bind(tokens)
  const grants: Grants = {
    clientCredentials: clientCredentialsGrant({ routes, mint: mintFor, now }),
    jwtBearer: jwtBearerGrant({ issuer: env.BASE_URL, routes, globalAllow, trustedIdps, store, mint: mintFor, now }),
    async issueCode (grant) {
      const code = randomToken(32)
      await store.set(`code:${hashSecret(code)}`, JSON.stringify(grant), CODE_TTL)
      return code
    },

    async redeemCode (client, request) {
      const hash = hashSecret(request.code)
      const raw = await store.getDel(`code:${hash}`)
      if (raw === null) {
        const used = await store.get(`code-used:${hash}`)
        if (used !== null) {
          // RFC 6749 §4.1.2 / OAuth 2.1 §4.1.3: a replayed code means it leaked; what it issued goes.
          const use = JSON.parse(used) as CodeUse
          await tokens.revoke(use.jti, use.exp)
          if (use.familyId !== undefined) await revokeFamilyById(use.familyId)
          throw invalidGrant('authorization code was already used; the tokens it issued are revoked')
        }
        throw invalidGrant('authorization code is unknown or expired')
      }
      const grant = JSON.parse(raw) as CodeGrant
      if (grant.clientId !== client.client_id) throw invalidGrant('authorization code was issued to another client')
      if (grant.redirectUri !== request.redirectUri) throw invalidGrant('redirect_uri differs from the authorization request')
      verifyPkce(request.codeVerifier, grant.codeChallenge)
      const route = routeOf(grant.resource)
      checkClientOnRoute(route, client.client_id)
      // A code written by the previous version (no emailVerified) carries no identity to check.
      const refused = refusal(typeof grant.emailVerified === 'boolean' ? grant : undefined, route)
      if (refused !== undefined) throw invalidGrant(refused)
      checkResource(request.resource, route)

      const { response, jti, exp } = mint(grant, route, grant.scopes)
      const use: CodeUse = { jti, exp }
      if (client.grant_types.includes('refresh_token')) {
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
          accessTokens: [[jti, exp]],
          createdAt: Date.now()
        }
        await store.set(familyKey(familyId), JSON.stringify(record), ttlOf(record))
        response.refresh_token = refreshToken
        use.familyId = familyId
      }
      await store.set(`code-used:${hash}`, JSON.stringify(use), CODE_USE_TTL)
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
        const raw = await store.get(familyKey(familyId))
        const record = raw === null ? undefined : JSON.parse(raw) as FamilyRecord
        if (record !== undefined && record.clientId !== client.client_id) throw invalidGrant('refresh token was issued to another client')
        const now = Date.now()
        const decision = decideRefresh(record, presented, now, env.REFRESH_GRACE_MS, env.REFRESH_TOKEN_MAX_LIFETIME * 1000)
        switch (decision.action) {
          case 'reject':
            throw invalidGrant(decision.reason)
          case 'replay':
            return JSON.parse(unseal(key, decision.result, GRACE_CONTEXT)) as TokenResponse
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
        if (route.upstream.auth === 'provider_token' && await fastify.authorizationFlow.upstreamTokens(current.sub) === null) {
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
          ...rotateFamily(current, hashSecret(refreshToken), seal(key, JSON.stringify(response), GRACE_CONTEXT), now),
          accessTokens: [...liveTokens(current.accessTokens), [jti, exp]]
        }
        // Never past the absolute lifetime: rotation restarts the sliding TTL only up to it.
        if (await store.cas(familyKey(familyId), raw, JSON.stringify(next), ttlOf(next, now))) return response
      }
      throw new OAuthError('temporarily_unavailable', 'the refresh token is being used concurrently; retry', { status: 503, headers: { 'retry-after': '1' } })
    },

    async revokeRefreshToken (client, token) {
      const familyId = token.split('.')[0]
      const raw = await store.get(familyKey(familyId))
      if (raw === null) return
      const record = JSON.parse(raw) as FamilyRecord
      const hash = hashSecret(token)
      const ours = safeEqual(record.currentHash, hash) || (record.previous !== undefined && safeEqual(record.previous.hash, hash))
      if (ours && record.clientId === client.client_id) await revokeFamilyById(familyId)
    }
  }
  fastify.decorate('grants', grants)
}

export default fp(grantsPlugin, { name: 'grants', fastify: '5.x', dependencies: ['config', 'store', 'keys', 'tokens', 'authorization-flow'] })
