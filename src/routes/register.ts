import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { validateClientMetadata } from '../oauth/client-metadata.js'
import { OAuthErrorResponseSchema } from './oauth-schemas.js'

/**
 * Any JSON object: validateClientMetadata decides, so that a bad field is answered with
 * RFC 7591's `invalid_client_metadata` / `invalid_redirect_uri`, and unknown fields are ignored.
 */
export const ClientRegistrationRequestSchema = Type.Object({}, { additionalProperties: true })

export const ClientRegistrationResponseSchema = Type.Object({
  client_id: Type.String(),
  client_secret: Type.Optional(Type.String()),
  client_id_issued_at: Type.Integer(),
  client_secret_expires_at: Type.Optional(Type.Integer()),
  client_name: Type.Optional(Type.String()),
  redirect_uris: Type.Array(Type.String()),
  grant_types: Type.Array(Type.String()),
  response_types: Type.Array(Type.String()),
  token_endpoint_auth_method: Type.String()
})

/** Per client IP, generous: a hosted client registers once per user, many users share its egress. */
const REGISTER_RATE_LIMIT = { max: 60, timeWindow: '1 minute' }

/** Dynamic Client Registration (RFC 7591), at /oauth/register and the legacy /register. */
export default async function registerRoutes (instance: FastifyInstance): Promise<void> {
  const fastify = instance.withTypeProvider<TypeBoxTypeProvider>()
  const options = {
    schema: { body: ClientRegistrationRequestSchema, response: { 201: ClientRegistrationResponseSchema, 400: OAuthErrorResponseSchema } },
    config: { rateLimit: REGISTER_RATE_LIMIT }
  }
  for (const url of ['/oauth/register', '/register']) {
    fastify.post(url, options, async (request, reply) => {
      const metadata = validateClientMetadata(request.body)
      const { client, clientSecret } = await fastify.clients.register(metadata, request.ip)
      return await reply.code(201).header('cache-control', 'no-store').send({
        client_id: client.client_id,
        client_id_issued_at: client.client_id_issued_at,
        ...(clientSecret !== undefined ? { client_secret: clientSecret, client_secret_expires_at: 0 } : {}),
        ...metadata
      })
    })
  }
}
