import { hkdfSync } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import { Agent } from 'undici'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { SessionBinding } from '../proxy/session-binding.js'
import { routePipeline } from '../proxy/pipeline.js'

/**
 * The proxied routes: each configured route gets its own encapsulated context holding its
 * pipeline (proxy/pipeline.ts), built once here at start-up; all share one undici Agent.
 */
async function proxyPlugin (fastify: FastifyInstance): Promise<void> {
  const { env, routes } = fastify.config
  const agent = new Agent({
    connect: { rejectUnauthorized: true },
    headersTimeout: env.UPSTREAM_TIMEOUT_MS,
    // A quiet SSE stream is normal in MCP: never cut it for lack of data.
    bodyTimeout: 0,
    keepAliveTimeout: 30_000,
    connections: 256
  })
  const sessions = new SessionBinding(Buffer.from(hkdfSync('sha256', fastify.keys.encryptionKey, '', 'mcpgw session binding', 32)))
  const streams = new Set<FastifyReply>()
  const shared = { agent, sessions, streams, publicUrl: new URL(env.BASE_URL) }

  fastify.decorateRequest('upstreamSessionId', null)

  // Connections a client opened ahead and has not used yet: Node counts them as busy, so
  // closing would wait for the client's keep-alive timeout (it honours the gateway's, 72 s).
  const unused = new Set<Socket>()
  fastify.server.on('connection', (socket: Socket) => {
    unused.add(socket)
    socket.once('close', () => unused.delete(socket))
  })
  fastify.server.on('request', (req: IncomingMessage) => unused.delete(req.socket))

  // In-flight JSON requests finish on close; open SSE streams are ended cleanly so clients
  // reconnect (to another replica) instead of waiting on a socket that will never speak.
  fastify.addHook('preClose', async () => {
    for (const reply of streams) reply.raw.end()
    for (const socket of unused) socket.destroy()
  })
  fastify.addHook('onClose', async () => { await agent.close() })

  for (const route of routes) {
    await fastify.register(async function proxiedRoute (child) { await routePipeline(fastify, child, route, shared) })
  }
}

export default fp(proxyPlugin, { name: 'proxy', fastify: '5.x', dependencies: ['config', 'keys', 'tokens', 'security', 'metrics', 'tool-calls', 'provider-tokens'] })
