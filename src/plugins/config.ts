import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config/gateway-config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: GatewayConfig
  }
}

/** Decorates the configuration that buildApp validated before the app existed. */
async function configPlugin (fastify: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  fastify.decorate('config', opts.config)
}

export default fp(configPlugin, { name: 'config', fastify: '5.x' })
