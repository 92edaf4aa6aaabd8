import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'

/**
 * The plugins only the authorization server needs: cookies (consent and login), form bodies,
 * security headers for its HTML pages, rate limits. Registered inside the authorization
 * server's encapsulated context (routes/oauth.ts), so that the proxied routes run none of their
 * hooks: helmet adds two onRequest hooks (one async) and cookie one, even where nothing reads them.
 * fastify-plugin only so that they land in that context rather than in a further child.
 */
async function oauthContextPlugin (fastify: FastifyInstance): Promise<void> {
  await fastify.register(cookie, fastify.authorizationFlow.cookieOptions)
  await fastify.register(formbody)
  // Pages opt in (sendHtmlPage): the JSON endpoints need none of its headers.
  await fastify.register(helmet, { global: false })
  await fastify.register(rateLimit, {
    global: false,
    redis: fastify.hasDecorator('redis') ? fastify.redis : undefined,
    nameSpace: 'mcpgw:ratelimit:',
    skipOnError: true
  })
}

export default fp(oauthContextPlugin, { name: 'oauth-context', fastify: '5.x', dependencies: ['store', 'authorization-flow'] })
