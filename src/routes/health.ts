import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'

export const HealthReplySchema = Type.Object({
  status: Type.String(),
  store: Type.Optional(Type.String()),
  mode: Type.Optional(Type.String({ description: 'Redis: standalone, sentinel or cluster' })),
  node: Type.Optional(Type.String({ description: 'Redis: the host:port it writes to (a Cluster: every master)' }))
})

/** Liveness says the process answers; readiness says the store does too, and which one. */
export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.get('/healthz', { schema: { response: { 200: HealthReplySchema } } }, async () => ({ status: 'ok' }))

  fastify.get('/readyz', { schema: { response: { 200: HealthReplySchema, 503: HealthReplySchema } } }, async (_request, reply) => {
    const { store } = fastify
    const where = { store: store.kind, ...store.location?.() }
    if (await store.ping()) return { status: 'ready', ...where }
    return await reply.code(503).header('retry-after', '5').send({ status: 'unavailable', ...where })
  })
}
