import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createGrants, type Grants } from '../authorization/grants.js'
import { serviceDeps } from './service-deps.js'

declare module 'fastify' {
  interface FastifyInstance {
    grants: Grants
  }
}

/** Decorates the grant lifecycle (src/authorization/grants.ts). */
async function grantsPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.decorate('grants', createGrants({ ...serviceDeps(fastify), tokens: fastify.tokens, vault: fastify.upstreamTokens }))
}

export default fp(grantsPlugin, { name: 'grants', fastify: '5.x', dependencies: ['config', 'store', 'keys', 'tokens', 'authorization-flow'] })
