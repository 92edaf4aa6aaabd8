import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TokenResponse } from '../authorization/grants.js'
import { OAuthError } from '../oauth/errors.js'
import { countRefresh } from '../plugins/metrics.js'
import { parseTokenRequest } from '../oauth/token-request.js'
import { ClientAuthorizationHeadersSchema, ClientRequestBodySchema, OAUTH_ERROR_RESPONSES } from './oauth-schemas.js'
import { TOKEN_RATE_LIMIT } from './token-rate-limit.js'

export const TokenResponseSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  scope: Type.String(),
  refresh_token: Type.Optional(Type.String())
})

/** The token endpoint (RFC 6749 §3.2) at /oauth/token and the legacy /token: each grant is a method of the grants service. */
export default async function tokenRoutes (instance: FastifyInstance): Promise<void> {
  const fastify = instance.withTypeProvider<TypeBoxTypeProvider>()
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
      const tokenRequest = parseTokenRequest(request.body, request.headers.authorization)
      const client = await fastify.clients.authenticate(tokenRequest.client, request)
      const exchange = async (): Promise<TokenResponse> => await fastify.grants.exchange(client, tokenRequest)
      if (tokenRequest.grantType !== 'refresh_token') return await exchange()
      return await countRefresh(fastify.gatewayMetrics, 'client', err => err instanceof OAuthError && err.statusCode < 500, exchange)
    })
  }
}
