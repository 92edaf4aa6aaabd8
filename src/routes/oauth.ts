import type { FastifyInstance } from 'fastify'
import oauthContext from '../plugins/oauth-context.js'
import authorizationServerMetadataRoutes from './authorization-server-metadata.js'
import authorizeRoutes from './authorize.js'
import registerRoutes from './register.js'
import tokenManagementRoutes from './token-management.js'
import tokenRoutes from './token.js'

/**
 * The authorization server's endpoints, in their own encapsulated context with the plugins only
 * they use (cookies, form bodies, helmet, rate limits): the proxied MCP routes run none of them.
 */
export default async function oauthRoutes (fastify: FastifyInstance): Promise<void> {
  await fastify.register(oauthContext)
  await fastify.register(authorizationServerMetadataRoutes)
  await fastify.register(registerRoutes)
  await fastify.register(authorizeRoutes)
  await fastify.register(tokenRoutes)
  await fastify.register(tokenManagementRoutes)
}
