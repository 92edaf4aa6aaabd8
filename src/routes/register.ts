import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { validateClientMetadata } from '../oauth/client-metadata.js'
import { OAuthError } from '../oauth/errors.js'
import { useIpQuota } from '../store/ip-quota.js'
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
/**
 * Registrations live 90 days, so the per-minute limit alone still lets one address fill the
 * store with 86,400 clients a day: a daily quota per address (REGISTRATIONS_PER_IP_PER_DAY),
 * counted in the store so that every replica shares it.
 */
const DAY_SECONDS = 24 * 60 * 60

/** Dynamic Client Registration (RFC 7591), at /oauth/register and the legacy /register. */
export default async function registerRoutes (fastify: FastifyInstance): Promise<void> {
  const daily = { name: 'register-ip', max: fastify.config.env.REGISTRATIONS_PER_IP_PER_DAY, windowSeconds: DAY_SECONDS }
  const options = {
    schema: { body: ClientRegistrationRequestSchema, response: { 201: ClientRegistrationResponseSchema, 400: OAuthErrorResponseSchema } },
    config: { rateLimit: REGISTER_RATE_LIMIT }
  }
  for (const url of ['/oauth/register', '/register']) {
    fastify.post(url, options, async (request, reply) => {
      const metadata = validateClientMetadata(request.body)
      // Counted after validation: a malformed request costs the address nothing.
      const quota = await useIpQuota(fastify.store, daily, request.ip)
      if (!quota.allowed) {
        throw new OAuthError('temporarily_unavailable', 'too many client registrations from this address today; retry later', { status: 429, headers: { 'retry-after': String(quota.retryAfter) } })
      }
      const { client, clientSecret } = await fastify.clients.register(metadata)
      return await reply.code(201).header('cache-control', 'no-store').send({
        client_id: client.client_id,
        client_id_issued_at: client.client_id_issued_at,
        ...(clientSecret !== undefined ? { client_secret: clientSecret, client_secret_expires_at: 0 } : {}),
        ...metadata
      })
    })
  }
}
