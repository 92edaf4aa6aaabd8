import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
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

  await fastify.register(cors, {
    origin: allowed === null ? '*' : [...allowed],
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: MCP_REQUEST_HEADERS,
    exposedHeaders: MCP_EXPOSED_HEADERS,
    maxAge: 600
  })
  // Security headers matter on the HTML pages (consent, errors); routes opt in so the proxied
  // path does not pay for them.
  await fastify.register(helmet, { global: false })
  await fastify.register(rateLimit, {
    global: false,
    redis: fastify.hasDecorator('redis') ? fastify.redis : undefined,
    nameSpace: 'mcpgw:ratelimit:',
    skipOnError: true
  })
}

export default fp(securityPlugin, { name: 'security', fastify: '5.x', dependencies: ['config', 'store'] })
