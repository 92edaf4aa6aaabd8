import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { gatewayScopes, grantableScopes } from '../config/config-file.js'

export const ProtectedResourceMetadataSchema = Type.Object({
  resource: Type.String(),
  authorization_servers: Type.Array(Type.String()),
  scopes_supported: Type.Array(Type.String()),
  bearer_methods_supported: Type.Array(Type.String()),
  resource_name: Type.Optional(Type.String())
})

export const JwksSchema = Type.Object({
  keys: Type.Array(Type.Object({}, { additionalProperties: true }))
})

const PRM_PATH = '/.well-known/oauth-protected-resource'

/**
 * RFC 9728 metadata: one document per route (its `resource` is the route's URL, byte for byte)
 * plus one at the root for the gateway as a whole; and the JWKS that verifies our tokens.
 */
export default async function protectedResourceRoutes (fastify: FastifyInstance): Promise<void> {
  const { env, routes } = fastify.config
  const cache = { 'cache-control': 'public, max-age=300' }
  const document = (resource: string, scopes: string[], name?: string): object => ({
    resource,
    authorization_servers: [env.BASE_URL],
    scopes_supported: scopes,
    bearer_methods_supported: ['header'],
    ...(name !== undefined ? { resource_name: name } : {})
  })
  const schema = { response: { 200: ProtectedResourceMetadataSchema } }

  const allScopes = gatewayScopes(routes)
  const root = document(env.BASE_URL, allScopes)
  fastify.get(PRM_PATH, { schema }, async (_request, reply) => await reply.headers(cache).send(root))

  for (const route of routes) {
    const body = document(route.resourceUrl, grantableScopes(route), `MCP server at ${route.pattern}`)
    fastify.get(PRM_PATH + route.pattern, { schema }, async (_request, reply) => await reply.headers(cache).send(body))
  }

  fastify.get('/.well-known/jwks.json', { schema: { response: { 200: JwksSchema } } }, async (_request, reply) => {
    return await reply.headers(cache).send({ keys: fastify.keys.signing.map(k => k.publicJwk) })
  })

  // Clients stop probing on 5xx; everything else under /.well-known is a clean 404.
  fastify.all('/.well-known/*', async (request, reply) => {
    return await reply.code(404).send({ error: 'not_found', error_description: `${request.url.split('?')[0]} is not served here` })
  })
}
