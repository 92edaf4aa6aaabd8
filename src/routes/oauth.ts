import formbody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import authorizationServerMetadataRoutes from './authorization-server-metadata.js'
import authorizeRoutes from './authorize.js'
import registerRoutes from './register.js'
import tokenManagementRoutes from './token-management.js'
import tokenRoutes from './token.js'

/**
 * The authorization server's endpoints. Form bodies are parsed here only (encapsulated), so
 * the proxied MCP routes never see a parsed form.
 */
export default async function oauthRoutes (fastify: FastifyInstance): Promise<void> {
  await fastify.register(formbody)
  await fastify.register(authorizationServerMetadataRoutes)
  await fastify.register(registerRoutes)
  await fastify.register(authorizeRoutes)
  await fastify.register(tokenRoutes)
  await fastify.register(tokenManagementRoutes)
}
