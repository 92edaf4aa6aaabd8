import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'

export const HealthReplySchema = Type.Object({ status: Type.String(), store: Type.Optional(Type.String()) })

/** Liveness says the process answers; readiness says the store does too. */
export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.get('/healthz', { schema: { response: { 200: HealthReplySchema } } }, async () => ({ status: 'ok' }))

  fastify.get('/readyz', { schema: { response: { 200: HealthReplySchema, 503: HealthReplySchema } } }, async (_request, reply) => {
    if (await fastify.store.ping()) return { status: 'ready', store: fastify.store.kind }
    return await reply.code(503).header('retry-after', '5').send({ status: 'unavailable', store: fastify.store.kind })
  })
}
