import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    /** Browser origins that may call the gateway: ALLOWED_ORIGINS plus the gateway's own. */
    isOriginAllowed: (origin: string) => boolean
  }
}

export const MCP_REQUEST_HEADERS = [
  'Authorization', 'Content-Type', 'Accept', 'Mcp-Session-Id', 'MCP-Protocol-Version', 'Last-Event-ID', 'Mcp-Method', 'Mcp-Name'
]
export const MCP_EXPOSED_HEADERS = ['WWW-Authenticate', 'Mcp-Session-Id', 'MCP-Protocol-Version']

async function securityPlugin (fastify: FastifyInstance): Promise<void> {
  const { allowedOrigins, env } = fastify.config
  const own = new URL(env.BASE_URL).origin
  const allowed = allowedOrigins === '*' ? null : new Set([own, ...allowedOrigins])
  const isOriginAllowed = (origin: string): boolean => allowed === null || allowed.has(origin)
  fastify.decorate('isOriginAllowed', isOriginAllowed)

  // Header values joined once: @fastify/cors joins arrays again on every request.
  await fastify.register(cors, {
    origin: allowed === null ? '*' : [...allowed],
    methods: 'GET, POST, DELETE, OPTIONS',
    allowedHeaders: MCP_REQUEST_HEADERS.join(', '),
    exposedHeaders: MCP_EXPOSED_HEADERS.join(', '),
    maxAge: 600
  })
}

export default fp(securityPlugin, { name: 'security', fastify: '5.x', dependencies: ['config'] })
