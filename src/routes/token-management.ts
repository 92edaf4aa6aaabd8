import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { parseClientAuthentication } from '../oauth/client-auth.js'
import { OAuthError } from '../oauth/errors.js'
import { type Params, singleParam } from '../oauth/params.js'
import type { AccessClaims } from '../tokens/token-service.js'
import type { KnownClient } from '../authorization/clients.js'
import { ClientAuthorizationHeadersSchema, ClientRequestBodySchema, OAUTH_ERROR_RESPONSES } from './oauth-schemas.js'
import { TOKEN_RATE_LIMIT } from './token.js'

export const IntrospectionResponseSchema = Type.Object({
  active: Type.Boolean(),
  scope: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  sub: Type.Optional(Type.String()),
  aud: Type.Optional(Type.String()),
  iss: Type.Optional(Type.String()),
  exp: Type.Optional(Type.Integer()),
  iat: Type.Optional(Type.Integer()),
  jti: Type.Optional(Type.String()),
  token_type: Type.Optional(Type.String()),
  email: Type.Optional(Type.String())
})

/** A JWT has two dots; the gateway's refresh tokens have one (family id, secret). */
const isJwt = (token: string): boolean => token.split('.').length === 3

/**
 * Revocation (RFC 7009) and introspection (RFC 7662). Both authenticate the client first and
 * only ever act on or reveal that client's own tokens.
 */
export default async function tokenManagementRoutes (fastify: FastifyInstance): Promise<void> {
  const { routes } = fastify.config

  /** The claims of a live access token of this gateway, for whichever route it was minted. */
  function accessClaims (token: string): AccessClaims | undefined {
    for (const route of routes) {
      try {
        return fastify.tokens.verify(token, route.resourceUrl)
      } catch {
        // Not for this route (or not valid at all): try the next.
      }
    }
    return undefined
  }

  async function authenticated (request: FastifyRequest): Promise<{ client: KnownClient, token: string, confidential: boolean }> {
    const body = request.body as Params
    const auth = parseClientAuthentication(request.headers.authorization, body)
    const client = await fastify.clients.authenticate(auth, request)
    const token = singleParam(body, 'token')
    if (token === undefined) throw new OAuthError('invalid_request', 'token is required')
    return { client, token, confidential: auth.method !== 'none' }
  }

  const schema = { body: ClientRequestBodySchema, headers: ClientAuthorizationHeadersSchema }
  const config = { rateLimit: TOKEN_RATE_LIMIT }

  fastify.post('/oauth/revoke', { schema: { ...schema, response: OAUTH_ERROR_RESPONSES }, config }, async (request, reply) => {
    const { client, token } = await authenticated(request)
    if (isJwt(token)) {
      const claims = accessClaims(token)
      if (claims !== undefined && claims.client_id === client.client_id) await fastify.tokens.revoke(claims.jti, claims.exp)
    } else {
      await fastify.grants.revokeRefreshToken(client, token)
    }
    // RFC 7009 §2.2: unknown, foreign and already revoked tokens are answered the same.
    return await reply.header('cache-control', 'no-store').send()
  })

  fastify.post('/oauth/introspect', { schema: { ...schema, response: { 200: IntrospectionResponseSchema, ...OAUTH_ERROR_RESPONSES } }, config }, async (request, reply) => {
    const { client, token, confidential } = await authenticated(request)
    // RFC 7662 §2.1: the caller must be authorized; a public client proves nothing.
    if (!confidential) throw new OAuthError('invalid_client', 'introspection is for confidential clients (authenticate with the client secret)')
    const claims = isJwt(token) ? accessClaims(token) : undefined
    reply.header('cache-control', 'no-store')
    if (claims === undefined || claims.client_id !== client.client_id) return { active: false }
    return { active: true, token_type: 'Bearer', ...claims }
  })
}
