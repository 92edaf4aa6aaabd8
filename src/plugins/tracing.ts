import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayTracing, RequestOutcome } from '../tracing/gateway-tracing.js'
import { tracingSettings } from '../tracing/otel-settings.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** null when the OTEL_* variables leave tracing off: callers then do nothing but this check. */
    tracing: GatewayTracing | null
  }
}

/** Probes and scrapes would drown the traces that matter. */
const UNTRACED = new Set(['/metrics', '/healthz', '/readyz'])

/** OpenTelemetry: a server span per request (proxied or OAuth), ended with what the request learned. */
async function tracingPlugin (fastify: FastifyInstance): Promise<void> {
  const settings = tracingSettings(fastify.config.env)
  // A gateway that does not trace never loads OpenTelemetry's SDK and exporter (~3 MB less RSS once running).
  const tracing = settings === null ? null : new (await import('../tracing/gateway-tracing.js')).GatewayTracing(settings)
  fastify.decorate('tracing', tracing)
  if (tracing === null) return
  const patterns = fastify.config.routes.map(r => r.pattern)

  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    const url = request.routeOptions.url
    if (url !== undefined && UNTRACED.has(url)) {
      done()
      return
    }
    tracing.startRequest(request, request.headers, request.method, request.url.split('?')[0], done)
  })
  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    tracing.endRequest(request, outcome(request, reply))
    done()
  })
  fastify.addHook('onClose', async () => { await tracing.shutdown() })

  function outcome (request: FastifyRequest, reply: FastifyReply): RequestOutcome {
    const url = request.routeOptions.url
    // A proxied route is named by its pattern, also when the client wrote it with a trailing slash.
    const route = url === undefined ? 'unmatched' : patterns.find(p => url === p || url.startsWith(`${p}/`)) ?? url
    const calls = request.toolCalls?.calls
    return {
      route,
      status: reply.statusCode,
      clientId: request.auth?.client_id ?? requestedClientId(request),
      email: request.auth?.email,
      methods: calls?.map(c => c.method),
      tools: calls?.filter(c => c.method === 'tools/call' && c.name !== undefined).map(c => c.name as string)
    }
  }
}

/** The client_id an OAuth request names (form body or query); public, never a secret. */
function requestedClientId (request: FastifyRequest): string | undefined {
  for (const source of [request.body, request.query]) {
    const id = (source as { client_id?: unknown } | undefined)?.client_id
    if (typeof id === 'string') return id.slice(0, 256)
  }
  return undefined
}

export default fp(tracingPlugin, { name: 'tracing', fastify: '5.x', dependencies: ['config'] })
