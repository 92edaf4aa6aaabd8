import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Clock } from '../authorization/clock.js'
import type { GatewayConfig } from '../config/gateway-config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: GatewayConfig
    /** The time every service reads (tests inject one they advance). */
    clock: Clock
  }
}

/** Decorates the configuration that buildApp validated before the app existed, and the clock. */
async function configPlugin (fastify: FastifyInstance, opts: { config: GatewayConfig, clock: Clock }): Promise<void> {
  fastify.decorate('config', opts.config)
  fastify.decorate('clock', opts.clock)
}

export default fp(configPlugin, { name: 'config', fastify: '5.x' })
