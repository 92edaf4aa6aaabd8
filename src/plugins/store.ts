import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { openStore } from '../store/open-store.js'
import type { Store } from '../store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

/** Redis when configured, else the embedded memory store; one log line says which. */
async function storePlugin (fastify: FastifyInstance): Promise<void> {
  const { store, redis, description } = await openStore(fastify.config.env, fastify.log, undefined, fastify.clock.now)
  fastify.log.info({ store: store.kind }, `store: ${description}`)
  if (redis !== undefined) {
    // The rate limiter's one-key script runs on every mode's client alike.
    await fastify.register(fastifyRedis, { client: redis as Redis, closeClient: false })
  }
  fastify.decorate('store', store)
  fastify.addHook('onClose', async () => { await store.close() })
}

export default fp(storePlugin, { name: 'store', fastify: '5.x', dependencies: ['config'] })
