import fp from 'fastify-plugin'
import metricsModule from 'fastify-metrics'
import type { FastifyInstance } from 'fastify'
import { OAuthError } from '../oauth/errors.js'

// fastify-metrics is CommonJS with an ES default export.
const fastifyMetrics = metricsModule.default
type Counter<L extends string> = import('prom-client').Counter<L>

export interface GatewayMetrics {
  proxied: Counter<'route' | 'status'>
  authFailures: Counter<'reason'>
  upstreamErrors: Counter<'route' | 'kind'>
}

declare module 'fastify' {
  interface FastifyInstance {
    gatewayMetrics: GatewayMetrics
  }
}

async function metricsPlugin (fastify: FastifyInstance): Promise<void> {
  await fastify.register(fastifyMetrics, {
    endpoint: '/metrics',
    // Tests build many apps in one process; each starts from a clean registry.
    clearRegisterOnInit: true,
    routeMetrics: {
      enabled: { histogram: true, summary: false },
      registeredRoutesOnly: true,
      routeBlacklist: ['/metrics', '/healthz', '/readyz']
    }
  })
  const { Counter } = fastify.metrics.client
  const metrics: GatewayMetrics = {
    proxied: new Counter({ name: 'mcpgw_proxied_requests_total', help: 'Proxied MCP requests by route and status', labelNames: ['route', 'status'] }),
    authFailures: new Counter({ name: 'mcpgw_auth_failures_total', help: 'Refused bearer tokens by reason', labelNames: ['reason'] }),
    upstreamErrors: new Counter({ name: 'mcpgw_upstream_errors_total', help: 'Upstream failures by route and kind', labelNames: ['route', 'kind'] })
  }
  fastify.decorate('gatewayMetrics', metrics)
  fastify.addHook('onError', async (_request, _reply, error) => {
    if (error instanceof OAuthError && (error.code === 'invalid_token' || error.code === 'insufficient_scope' || error.reason === 'token_in_query')) {
      metrics.authFailures.inc({ reason: error.reason })
    }
  })
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x' })
