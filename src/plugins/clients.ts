import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createClients, type Clients } from '../authorization/clients.js'
import { serviceDeps } from './service-deps.js'

declare module 'fastify' {
  interface FastifyInstance {
    clients: Clients
  }
}

/** Decorates the client registry (src/authorization/clients.ts); metadata document fetches are traced. */
async function clientsPlugin (fastify: FastifyInstance): Promise<void> {
  const tracing = fastify.tracing
  fastify.decorate('clients', createClients(serviceDeps(fastify), {
    aroundFetch: tracing === null ? undefined : async (clientId, fetch) => await tracing.call('cimd fetch', { 'mcpgw.client_id': clientId.slice(0, 256) }, fetch)
  }))
}

export default fp(clientsPlugin, { name: 'clients', fastify: '5.x', dependencies: ['config', 'store', 'keys', 'tracing'] })
