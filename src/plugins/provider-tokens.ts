import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createProviderTokens, type ProviderTokens } from '../authorization/provider-tokens.js'
import { countRefresh } from './metrics.js'
import { serviceDeps } from './service-deps.js'

// The proxy's provider_token credential imports these from here.
export { ProviderTokenError, type ProviderTokens } from '../authorization/provider-tokens.js'

declare module 'fastify' {
  interface FastifyInstance {
    providerTokens: ProviderTokens
  }
}

/** Decorates the provider-token service (src/authorization/provider-tokens.ts); its refreshes are counted. */
async function providerTokensPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.decorate('providerTokens', createProviderTokens({
    ...serviceDeps(fastify),
    vault: fastify.upstreamTokens,
    idp: fastify.upstreamIdp,
    aroundRefresh: async (refresh, refused) => await countRefresh(fastify.gatewayMetrics, 'provider', refused, refresh)
  }))
}

export default fp(providerTokensPlugin, { name: 'provider-tokens', fastify: '5.x', dependencies: ['config', 'store', 'keys', 'upstream-idp', 'authorization-flow'] })
