import fp from 'fastify-plugin'
import metricsModule from 'fastify-metrics'
import type { FastifyInstance } from 'fastify'
import { OAuthError } from '../oauth/errors.js'
import { MetricsListener } from '../metrics-listener.js'

// fastify-metrics is CommonJS with an ES default export.
const fastifyMetrics = metricsModule.default
type Counter<L extends string> = import('prom-client').Counter<L>
type Histogram<L extends string> = import('prom-client').Histogram<L>

/** fastify-metrics' route histogram, which the proxied routes feed themselves (labels bound once). */
export const REQUEST_DURATION = 'http_request_duration_seconds'

export interface GatewayMetrics {
  /** fastify-metrics' per-route histogram; proxied routes opt out of its hooks and observe it with bound labels. */
  requestDuration: Histogram<'method' | 'route' | 'status_code'>
  proxied: Counter<'route' | 'status'>
  authFailures: Counter<'reason'>
  upstreamErrors: Counter<'route' | 'kind'>
  /** Provider callbacks: ok, refused (allow-lists), denied (at the provider), failed (the exchange). */
  logins: Counter<'outcome'>
  /** kind client (refresh_token grants) or provider (the user's provider token); outcome ok, refused, error. */
  refreshes: Counter<'kind' | 'outcome'>
}

declare module 'fastify' {
  interface FastifyInstance {
    gatewayMetrics: GatewayMetrics
  }
}

/** Counts one refresh: refused when `refused(err)` says the grant is gone (the user must log in again), error otherwise. */
export async function countRefresh<T> (metrics: GatewayMetrics, kind: 'client' | 'provider', refused: (err: unknown) => boolean, run: () => Promise<T>): Promise<T> {
  try {
    const result = await run()
    metrics.refreshes.inc({ kind, outcome: 'ok' })
    return result
  } catch (err) {
    metrics.refreshes.inc({ kind, outcome: refused(err) ? 'refused' : 'error' })
    throw err
  }
}

/** Scrape path, kept out of route metrics and traces. */
const METRICS_PATH = '/metrics'

async function metricsPlugin (fastify: FastifyInstance): Promise<void> {
  const { env } = fastify.config
  // With METRICS_PORT, /metrics lives only on that port; the main one answers 404 for it.
  const ownPort = env.METRICS_PORT !== undefined
  await fastify.register(fastifyMetrics, {
    endpoint: ownPort ? null : METRICS_PATH,
    // Tests build many apps in one process; each starts from a clean registry.
    clearRegisterOnInit: true,
    routeMetrics: {
      enabled: { histogram: true, summary: false },
      registeredRoutesOnly: true,
      routeBlacklist: [METRICS_PATH, '/healthz', '/readyz']
    }
  })
  const { Counter, Gauge, Histogram } = fastify.metrics.client
  const requestDuration = fastify.metrics.client.register.getSingleMetric(REQUEST_DURATION)
  if (!(requestDuration instanceof Histogram)) throw new Error(`fastify-metrics registered no ${REQUEST_DURATION} histogram`)
  const { store, keys } = fastify
  const metrics: GatewayMetrics = {
    requestDuration,
    proxied: new Counter({ name: 'mcpgw_proxied_requests_total', help: 'Proxied MCP requests by route and status', labelNames: ['route', 'status'] }),
    authFailures: new Counter({ name: 'mcpgw_auth_failures_total', help: 'Refused bearer tokens by reason', labelNames: ['reason'] }),
    upstreamErrors: new Counter({ name: 'mcpgw_upstream_errors_total', help: 'Upstream failures by route and kind', labelNames: ['route', 'kind'] }),
    logins: new Counter({ name: 'mcpgw_logins_total', help: 'Logins at the identity provider by outcome', labelNames: ['outcome'] }),
    refreshes: new Counter({ name: 'mcpgw_refreshes_total', help: 'Token refreshes by kind (client, provider) and outcome', labelNames: ['kind', 'outcome'] })
  }
  /* eslint-disable no-new -- the registry holds them; collect() reads the state at scrape time */
  new Gauge({
    name: 'mcpgw_store_up',
    help: '1 when the store (redis or memory) answers',
    labelNames: ['store'],
    // A ping per scrape says what /readyz would.
    async collect () { this.set({ store: store.kind }, await store.ping() ? 1 : 0) }
  })
  new Gauge({
    name: 'mcpgw_signing_key_created_timestamp_seconds',
    help: 'When the signing key was created (0: unknown, a key from the environment)',
    collect () { this.set(keys.signing[0]?.createdAt ?? 0) }
  })
  /* eslint-enable no-new */
  fastify.decorate('gatewayMetrics', metrics)
  if (ownPort) {
    const register = fastify.metrics.client.register
    const listener = new MetricsListener(register, err => { fastify.log.error({ err }, 'metrics could not be collected') })
    // On ready, not on listen: a port already taken stops start-up instead of leaving no metrics.
    fastify.addHook('onReady', async () => {
      try {
        await listener.listen(env.HOST, env.METRICS_PORT as number)
      } catch (err) {
        throw new Error(`METRICS_PORT ${env.METRICS_PORT as number}: ${(err as Error).message}`)
      }
    })
    fastify.addHook('onClose', async () => { await listener.close() })
  }
  fastify.addHook('onError', async (_request, _reply, error) => {
    if (error instanceof OAuthError && (error.code === 'invalid_token' || error.code === 'insufficient_scope' || error.reason === 'token_in_query')) {
      metrics.authFailures.inc({ reason: error.reason })
    }
  })
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x', dependencies: ['config', 'store', 'keys'] })
