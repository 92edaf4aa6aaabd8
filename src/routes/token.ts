import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { parseClientAuthentication } from '../oauth/client-auth.js'
import { OAuthError } from '../oauth/errors.js'
import type { TokenResponse } from '../authorization/grants.js'
import { countRefresh } from '../plugins/metrics.js'
import type { Params } from '../oauth/params.js'
import { parseTokenRequest } from '../oauth/token-request.js'
import { ClientAuthorizationHeadersSchema, ClientRequestBodySchema, OAUTH_ERROR_RESPONSES } from './oauth-schemas.js'

export const TokenResponseSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  scope: Type.String(),
  refresh_token: Type.Optional(Type.String())
})

/** The client a request claims to be, for rate limiting only (nothing is verified yet). */
export function claimedClientId (request: FastifyRequest): string {
  try {
    return parseClientAuthentication(request.headers.authorization, request.body as Params).clientId
  } catch {
    return ''
  }
}

/**
 * Per client and IP, after the body is parsed: one noisy client cannot lock out the others
 * behind the same egress IP, and one IP cannot hammer a client's tokens.
 */
export const TOKEN_RATE_LIMIT = {
  max: 120,
  timeWindow: '1 minute',
  hook: 'preHandler' as const,
  keyGenerator: (request: FastifyRequest) => `${claimedClientId(request)}|${request.ip}`
}

/** The token endpoint (RFC 6749 §3.2) at /oauth/token and the legacy /token. */
export default async function tokenRoutes (fastify: FastifyInstance): Promise<void> {
  const options = {
    schema: { body: ClientRequestBodySchema, headers: ClientAuthorizationHeadersSchema, response: { 200: TokenResponseSchema, ...OAUTH_ERROR_RESPONSES } },
    config: { rateLimit: TOKEN_RATE_LIMIT }
  }
  // Errors too: RFC 6749 §5.1 forbids caching anything this endpoint answers.
  fastify.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
  })
  for (const url of ['/oauth/token', '/token']) {
    fastify.post(url, options, async request => {
      const tokenRequest = parseTokenRequest(request.body as Params, request.headers.authorization)
      const client = await fastify.clients.authenticate(tokenRequest.client, request)
      const exchange = async (): Promise<TokenResponse> => await fastify.grants.exchange(client, tokenRequest)
      if (tokenRequest.grantType !== 'refresh_token') return await exchange()
      return await countRefresh(fastify.gatewayMetrics, 'client', err => err instanceof OAuthError && err.statusCode < 500, exchange)
    })
  }
}
