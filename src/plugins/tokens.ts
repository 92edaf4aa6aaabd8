import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { TokenRejected, TokenService, type AccessClaims, type MintOptions } from '../tokens/token-service.js'
import { insufficientScope, unauthorized, type ChallengeTarget } from '../oauth/challenge.js'
import { OAuthError } from '../oauth/errors.js'
import { grantedScopes } from '../tokens/granted-scopes.js'
import { parseRevocation, publishRevocation, revocationMember, REVOCATIONS_CHANNEL, REVOKED_SET } from '../tokens/revocations.js'

export interface Tokens {
  mint (opts: MintOptions): { token: string, jti: string, expiresAt: number }
  /** Throws TokenRejected. */
  verify (token: string, audience: string): AccessClaims
  identityToken (claims: AccessClaims, audience: string): string
  /** Denies the token on every replica until it expires. */
  revoke (jti: string, expiresAt: number): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
    /**
     * A check that admits only this gateway's tokens for `target`: sets `request.auth` or
     * throws the challenge. Synchronous, so a route can run it inside its one onRequest hook.
     */
    checkBearer: (target: ChallengeTarget & { resourceUrl: string }) => (request: FastifyRequest) => void
  }
  interface FastifyRequest {
    auth: AccessClaims | null
  }
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

async function tokensPlugin (fastify: FastifyInstance): Promise<void> {
  const { env } = fastify.config
  const service = new TokenService(env.BASE_URL, [...fastify.keys.signing], env.ACCESS_TOKEN_TTL, fastify.clock)
  fastify.keys.onRotate(signing => service.setKeys(signing))

  // Revocations reach an in-memory deny set over pub/sub, so the proxied path never reads Redis.
  const remember = (member: string): void => {
    const revocation = parseRevocation(member)
    if (revocation !== undefined) service.markRevoked(revocation.jti, revocation.exp)
  }
  const reload = async (): Promise<void> => {
    for (const member of await fastify.store.setMembers(REVOKED_SET)) remember(member)
  }
  await fastify.store.subscribe(REVOCATIONS_CHANNEL, remember)
  await reload()
  // After an outage (of Redis, or of the subscription alone): put back what this replica knows
  // (Redis may have restarted empty), then learn what others published while it was not listening.
  const resync = async (): Promise<void> => {
    for (const [jti, exp] of service.revokedEntries()) await fastify.store.setAdd(REVOKED_SET, revocationMember(jti, exp), exp)
    await reload()
  }
  fastify.store.onReconnect(() => {
    resync().catch(err => fastify.log.warn({ err }, 'resynchronising revocations failed'))
  })
  const timers = [setInterval(() => service.pruneRevoked(), 60_000)]
  if (fastify.store.kind === 'redis') {
    // Pub/sub delivers at most once: this bounds how long a message lost anyway goes unnoticed.
    timers.push(setInterval(() => {
      reload().catch(err => fastify.log.debug({ err }, 'periodic revocation reload failed'))
    }, env.REVOCATION_RESYNC_SECONDS * 1000))
  }
  for (const timer of timers) timer.unref()
  fastify.addHook('onClose', async () => { for (const timer of timers) clearInterval(timer) })

  const tokens: Tokens = {
    mint: opts => service.mintAccess(opts),
    verify: (token, audience) => service.verify(token, audience),
    identityToken: (claims, audience) => service.identityToken(claims, audience),
    async revoke (jti, expiresAt) {
      service.markRevoked(jti, expiresAt)
      await publishRevocation(fastify.store, jti, expiresAt)
    }
  }
  fastify.decorate('tokens', tokens)
  fastify.decorateRequest('auth', null)

  fastify.decorate('checkBearer', function checkBearer (target: ChallengeTarget & { resourceUrl: string }) {
    return function bearer (request: FastifyRequest): void {
      const header = request.headers.authorization
      if (header === undefined) {
        if (request.url.includes('access_token=')) {
          throw new OAuthError('invalid_request', 'Send the access token in the Authorization header, never in the URL', { reason: 'token_in_query' })
        }
        throw unauthorized(target)
      }
      const match = BEARER.exec(header)
      if (match === null) throw unauthorized(target, { description: 'The Authorization header must be "Bearer <token>"', reason: 'malformed' })
      let claims: AccessClaims
      try {
        claims = service.verify(match[1], target.resourceUrl)
      } catch (err) {
        if (err instanceof TokenRejected) throw unauthorized(target, { description: err.message, reason: err.reason })
        throw err
      }
      if (target.scopes.length > 0) {
        const granted = grantedScopes(claims)
        if (!target.scopes.every(s => granted.includes(s))) throw insufficientScope(target, granted)
      }
      request.auth = claims
    }
  })
}

export default fp(tokensPlugin, { name: 'tokens', fastify: '5.x', dependencies: ['config', 'store', 'keys'] })
