import type { IncomingHttpHeaders } from 'node:http'
import type { Agent, Dispatcher } from 'undici'
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify'
import type { RouteConfig } from '../config/config-file.js'
import type { GatewayMetrics } from '../plugins/metrics.js'
import { noChildLogger } from '../request-log.js'
import { forwardableHeaders } from './client-headers.js'
import { guard } from './guard.js'
import { proxyErrors, type ProxyErrorSender, type UpstreamFailure } from './proxy-errors.js'
import { UpstreamExchange, type Relay } from './relay.js'
import type { SessionBinding } from './session-binding.js'
import type { UpstreamCredentials } from './credentials/upstream-credentials.js'
import { noCredentials } from './credentials/none.js'
import { identityToken } from './credentials/identity.js'
import { staticHeader } from './credentials/static-header.js'
import { providerToken } from './credentials/provider-token.js'

/** MCP messages can carry files or long prompts; the OAuth endpoints keep Fastify's 1 MiB. */
const PROXY_BODY_LIMIT = 4 * 1024 * 1024

/** What every route's pipeline shares: one undici Agent, the session MAC, the open streams. */
export interface PipelineShared {
  agent: Agent
  sessions: SessionBinding
  streams: Set<FastifyReply>
  /** The public origin, whatever Host or X-Forwarded-Host the client sent. */
  publicUrl: URL
}

function credentialsFor (fastify: FastifyInstance, route: RouteConfig, refuse: ProxyErrorSender): UpstreamCredentials {
  const upstream = route.upstream
  switch (upstream.auth) {
    case 'identity': return identityToken(route.targetUrl, fastify.tokens.identityToken)
    case 'provider_token': return providerToken(route, upstream.headerName, fastify.providerTokens, refuse)
    case 'header': return staticHeader({ name: upstream.headerName, value: upstream.value })
    case 'none': return noCredentials
  }
}

/**
 * One route's pipeline, built once at start-up in the route's own encapsulated context (`child`):
 * guard (Origin, bearer token, session binding) → tool interceptor → upstream credentials (one
 * strategy per `upstream_auth`) → relay (JSON buffered, SSE piped with its headers flushed).
 * Fastify routes the request and runs the hooks; the route's handler forwards it with undici's
 * `dispatch` over the shared Agent (relay.ts). Request bodies go upstream as the string (or
 * strictly read bytes) they arrived as. Only what the route's config turns on runs: the
 * provider token's fetch only on provider_token routes.
 */
export async function routePipeline (fastify: FastifyInstance, child: FastifyInstance, route: RouteConfig, shared: PipelineShared): Promise<void> {
  const { agent, sessions, publicUrl } = shared
  const target = new URL(route.targetUrl)
  const origin = target.origin
  const targetPath = target.pathname + target.search
  const queryJoin = target.search === '' ? '?' : '&'
  const publicProto = publicUrl.protocol.slice(0, -1)
  const publicHost = publicUrl.host
  const metrics: GatewayMetrics = fastify.gatewayMetrics
  // null unless OTEL_* turn tracing on: then the upstream hop is a child span whose traceparent goes upstream.
  const tracing = fastify.tracing
  const countProxied = memo((status: number) => metrics.proxied.labels({ route: route.pattern, status }))
  const upstreamErrors = memo((kind: UpstreamFailure) => metrics.upstreamErrors.labels({ route: route.pattern, kind }))
  const refuse = proxyErrors(route.pattern, kind => { upstreamErrors(kind).inc() })

  const interceptor = fastify.toolCalls.interceptor(route)
  const credentials = credentialsFor(fastify, route, refuse)
  const relay: Relay = {
    refuse,
    streams: shared.streams,
    bindSession: (upstreamId, request) => sessions.wrap(upstreamId, route.pattern, (request.auth as NonNullable<FastifyRequest['auth']>).sub),
    watch: interceptor.watch,
    upstreamStatus: tracing === null ? null : (request, status) => { tracing.upstreamEnd(request, status) }
  }

  // Routes with tool rules get the bytes: the interceptor refuses what is not strict UTF-8.
  child.setChildLoggerFactory(noChildLogger)
  child.addContentTypeParser(['application/json', 'text/plain'], { parseAs: interceptor.readsBodies ? 'buffer' : 'string', bodyLimit: PROXY_BODY_LIMIT }, (_request, body, done) => { done(null, body) })
  child.addHook('onRequest', guard(route, { isOriginAllowed: fastify.isOriginAllowed, bearer: fastify.checkBearer(route), sessions, refuse }))
  child.addHook('preHandler', interceptor.inspect)
  if (credentials.prepare !== undefined) child.addHook('preHandler', credentials.prepare)

  /**
   * The route's metrics and audit when its answer is out. fastify-metrics' own hooks would
   * build the label set (and Fastify's routeOptions) on every request and have prom-client hash
   * it; the proxied routes opt out of them and feed the same histogram through children bound
   * once per method and status.
   */
  function completed (url: string): onResponseHookHandler {
    const durations = memo((method: string) => memo((status: number) => metrics.requestDuration.labels({ method, route: url, status_code: status })))
    return function proxiedResponse (request, reply, done) {
      const status = reply.statusCode
      countProxied(status).inc()
      durations(request.method)(status).observe(reply.elapsedTime / 1000)
      interceptor.finish(request, reply)
      done()
    }
  }

  function upstreamRequestHeaders (request: FastifyRequest): IncomingHttpHeaders {
    const headers = forwardableHeaders(request.headers)
    if (request.upstreamSessionId !== null) headers['mcp-session-id'] = request.upstreamSessionId
    // The addresses TRUST_PROXY vouches for, ending with the peer's (request.ips exists only when it trusts a hop).
    const trusted = request.ips
    headers['x-forwarded-for'] = trusted === undefined || trusted.length === 1 ? request.socket.remoteAddress ?? '' : trusted.reverse().join(', ')
    headers['x-forwarded-proto'] = publicProto
    headers['x-forwarded-host'] = publicHost
    headers['x-request-id'] = request.id
    tracing?.upstreamStart(request, route.targetUrl, headers)
    credentials.apply(request, headers)
    return headers
  }

  function forward (request: FastifyRequest, reply: FastifyReply): void {
    const url = request.url
    const query = url.indexOf('?')
    const body = request.body as string | Buffer | undefined
    agent.dispatch({
      origin,
      path: query === -1 ? targetPath : targetPath + queryJoin + url.slice(query + 1),
      method: request.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(request) as Record<string, string | string[]>,
      body: body === undefined || body.length === 0 ? null : body
    }, new UpstreamExchange(relay, request, reply))
  }

  // The route itself and with a trailing slash, as clients write it either way.
  for (const url of [route.pattern, `${route.pattern}/`]) {
    child.route({ method: ['GET', 'POST', 'DELETE'], url, handler: forward, onResponse: completed(url), config: { disableMetrics: true } })
  }
}

/** prom-client hashes the label set on every call; a child made once per label set does it once. */
function memo<K, V> (make: (key: K) => V): (key: K) => V {
  const made = new Map<K, V>()
  return key => {
    let value = made.get(key)
    if (value === undefined) made.set(key, value = make(key))
    return value
  }
}
