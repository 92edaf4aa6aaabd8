import type { CreateRateLimitOptions } from '@fastify/rate-limit'
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify'

/**
 * A further rate limit on a route that has one (@fastify/rate-limit runs one limit per route
 * and request). Past it: 429 with Retry-After, answered by the error handler.
 */
export function rateLimitHook (fastify: FastifyInstance, options: CreateRateLimitOptions): onRequestAsyncHookHandler {
  const limit = fastify.createRateLimit(options)
  return async (request, reply) => {
    const result = await limit(request)
    if (result.isAllowed || !result.isExceeded) return
    reply.header('retry-after', String(result.ttlInSeconds))
    throw Object.assign(new Error(`Rate limit exceeded, retry in ${result.ttlInSeconds} seconds`), { statusCode: 429 })
  }
}
