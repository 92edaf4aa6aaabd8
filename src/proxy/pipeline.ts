import type { IncomingHttpHeaders } from 'node:http'
import httpProxy from '@fastify/http-proxy'
import type { Agent } from 'undici'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { RouteConfig } from '../config/config-file.js'
import type { GatewayMetrics } from '../plugins/metrics.js'
import { noChildLogger } from '../request-log.js'
import { withoutClientOnlyHeaders } from './client-headers.js'
import { guard } from './guard.js'
import { routeRelay, type UpstreamErrorKind, type UpstreamResponse } from './relay.js'
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

function credentialsFor (fastify: FastifyInstance, route: RouteConfig, upstreamError: (kind: 'provider') => void): UpstreamCredentials {
  const upstream = route.upstream
  switch (upstream.auth) {
    case 'identity': return identityToken(route.targetUrl, fastify.tokens.identityToken)
    case 'provider_token': return providerToken(route, upstream.headerName, fastify.providerTokens, () => upstreamError('provider'))
    case 'header': return staticHeader({ name: upstream.headerName, value: upstream.value })
    case 'none': return noCredentials
  }
}

/**
 * One route's pipeline, built once at start-up in the route's own encapsulated context (`child`):
 * guard (Origin, bearer token, session binding) → tool interceptor → upstream credentials (one
 * strategy per `upstream_auth`) → relay (JSON buffered, SSE piped with its headers flushed),
 * forwarded by @fastify/http-proxy over the shared Agent. Request bodies go upstream as the
 * string (or strictly read bytes) they arrived as. Only what the route's config turns on runs:
 * the provider token's fetch only on provider_token routes.
 */
export async function routePipeline (fastify: FastifyInstance, child: FastifyInstance, route: RouteConfig, shared: PipelineShared): Promise<void> {
  const { sessions, publicUrl } = shared
  const target = new URL(route.targetUrl)
  const publicProto = publicUrl.protocol.slice(0, -1)
  const publicHost = publicUrl.host
  const metrics: GatewayMetrics = fastify.gatewayMetrics
  // null unless OTEL_* turn tracing on: then the upstream hop is a child span whose traceparent goes upstream.
  const tracing = fastify.tracing
  // prom-client hashes the label set on every inc(); a child bound once per label set does it once.
  const bound = <K extends string | number>(make: (key: K) => { inc: () => void }): (key: K) => void => {
    const counters = new Map<K, { inc: () => void }>()
    return key => {
      let counter = counters.get(key)
      if (counter === undefined) counters.set(key, counter = make(key))
      counter.inc()
    }
  }
  const countProxied = bound<number>(status => metrics.proxied.labels({ route: route.pattern, status }))
  const countUpstreamError = bound<string>(kind => metrics.upstreamErrors.labels({ route: route.pattern, kind }))

  const interceptor = fastify.toolCalls.interceptor(route)
  const credentials = credentialsFor(fastify, route, countUpstreamError)
  const relay = routeRelay(route, shared.streams, countUpstreamError as (kind: UpstreamErrorKind) => void)

  // Routes with tool rules get the bytes: the interceptor refuses what is not strict UTF-8.
  child.setChildLoggerFactory(noChildLogger)
  child.addContentTypeParser(['application/json', 'text/plain'], { parseAs: interceptor.readsBodies ? 'buffer' : 'string', bodyLimit: PROXY_BODY_LIMIT }, (_request, body, done) => { done(null, body) })
  child.addHook('onRequest', guard(route, { isOriginAllowed: fastify.isOriginAllowed, bearer: fastify.checkBearer(route), sessions }))
  child.addHook('preHandler', interceptor.inspect)
  if (credentials.prepare !== undefined) child.addHook('preHandler', credentials.prepare)
  child.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    countProxied(reply.statusCode)
    interceptor.finish(request, reply)
    done()
  })

  function upstreamRequestHeaders (request: FastifyRequest, received: IncomingHttpHeaders): IncomingHttpHeaders {
    const headers = withoutClientOnlyHeaders(received)
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

  function clientResponseHeaders (headers: IncomingHttpHeaders, request: FastifyRequest): IncomingHttpHeaders {
    const upstreamId = headers['mcp-session-id']
    if (typeof upstreamId === 'string' && request.auth !== null) {
      headers['mcp-session-id'] = sessions.wrap(upstreamId, route.pattern, request.auth.sub)
    }
    // The upstream must not set cookies on the gateway's origin (consent cookies live there).
    delete headers['set-cookie']
    return headers
  }

  await child.register(httpProxy, {
    upstream: target.origin,
    prefix: route.pattern,
    rewritePrefix: target.pathname,
    routes: ['/'],
    httpMethods: ['GET', 'POST', 'DELETE'],
    undici: shared.agent,
    disableRequestLogging: true,
    proxyPayloads: false,
    handler: (request, reply, dest, options) => {
      const body = request.body
      if (typeof body === 'string') {
        return reply.from(dest + target.search, { ...options, body, contentType: request.headers['content-type'] as string })
      }
      return reply.from(dest + target.search, options)
    },
    replyOptions: {
      // reply-from types allow HTTP/2 servers; this gateway serves HTTP/1.1 only.
      rewriteRequestHeaders: (request, headers) => upstreamRequestHeaders(request as FastifyRequest, headers),
      rewriteHeaders: (headers, request) => clientResponseHeaders(headers, request as FastifyRequest),
      onResponse: (request, reply, res) => {
        tracing?.upstreamEnd(request, (res as unknown as UpstreamResponse).statusCode)
        relay.answer(reply as FastifyReply, res as unknown as UpstreamResponse, interceptor.watch(request as FastifyRequest))
      },
      onError: (reply, { error }) => { relay.failure(reply as unknown as FastifyReply, error) }
    }
  })
}
