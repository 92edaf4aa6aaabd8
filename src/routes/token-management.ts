import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { KnownClient, Requester } from '../authorization/clients.js'
import { createTokenManagement } from '../authorization/token-management.js'
import { parseClientAuthentication } from '../oauth/client-auth.js'
import { OAuthError } from '../oauth/errors.js'
import { type Params, singleParam } from '../oauth/params.js'
import { ClientAuthorizationHeadersSchema, ClientRequestBodySchema, OAUTH_ERROR_RESPONSES } from './oauth-schemas.js'
import { TOKEN_RATE_LIMIT } from './token-rate-limit.js'

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

/** Revocation (RFC 7009) and introspection (RFC 7662): authenticate the client, then the service decides. */
export default async function tokenManagementRoutes (instance: FastifyInstance): Promise<void> {
  const fastify = instance.withTypeProvider<TypeBoxTypeProvider>()
  const management = createTokenManagement({ config: fastify.config, tokens: fastify.tokens, grants: fastify.grants })

  async function authenticated (body: Params, authorization: string | undefined, requester: Requester): Promise<{ client: KnownClient, token: string, confidential: boolean }> {
    const auth = parseClientAuthentication(authorization, body)
    const client = await fastify.clients.authenticate(auth, requester)
    const token = singleParam(body, 'token')
    if (token === undefined) throw new OAuthError('invalid_request', 'token is required')
    return { client, token, confidential: auth.method !== 'none' }
  }

  const schema = { body: ClientRequestBodySchema, headers: ClientAuthorizationHeadersSchema }
  const config = { rateLimit: TOKEN_RATE_LIMIT }

  // No response schema: the answer is empty (200), and errors are the error handler's.
  fastify.post('/oauth/revoke', { schema, config }, async (request, reply) => {
    const { client, token } = await authenticated(request.body, request.headers.authorization, request)
    await management.revoke(client, token)
    return await reply.header('cache-control', 'no-store').send()
  })

  fastify.post('/oauth/introspect', { schema: { ...schema, response: { 200: IntrospectionResponseSchema, ...OAUTH_ERROR_RESPONSES } }, config }, async (request, reply) => {
    const { client, token, confidential } = await authenticated(request.body, request.headers.authorization, request)
    reply.header('cache-control', 'no-store')
    return management.introspect(client, token, confidential)
  })
}
