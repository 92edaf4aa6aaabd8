import { hkdfSync } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import fp from 'fastify-plugin'
import httpProxy from '@fastify/http-proxy'
import { Agent } from 'undici'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { RouteConfig } from '../config/config-file.js'
import { OAuthError } from '../oauth/errors.js'
import { SessionBinding } from '../proxy/session-binding.js'
import { unauthorized } from '../oauth/challenge.js'
import { ProviderTokenError } from './provider-tokens.js'
import { withoutClientOnlyHeaders } from '../proxy/client-headers.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The upstream's own Mcp-Session-Id, once the client's bound one has been checked. */
    upstreamSessionId: string | null
    /** upstream_auth provider_token: the user's access token at the identity provider. */
    providerToken: string | null
  }
}

/** MCP messages can carry files or long prompts; the OAuth endpoints keep Fastify's 1 MiB. */
const PROXY_BODY_LIMIT = 4 * 1024 * 1024
/** Upstream answers up to this size are buffered and sent in one write. */
const BUFFER_LIMIT = 1024 * 1024

interface UpstreamResponse { statusCode: number, headers: IncomingHttpHeaders, stream: Readable }

/**
 * One @fastify/http-proxy per route, each in its own encapsulated context with the route's
 * checks in one onRequest hook (origin, bearer token, session binding), all sharing one undici
 * Agent. Request bodies are forwarded as the raw string they arrived as (no JSON parse on the
 * hot path), JSON responses are buffered, and SSE is piped event by event with its headers
 * flushed at once.
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
  const metrics = fastify.gatewayMetrics
  // The public origin, whatever Host or X-Forwarded-Host the client sent.
  const publicUrl = new URL(env.BASE_URL)
  const publicProto = publicUrl.protocol.slice(0, -1)

  fastify.decorateRequest('upstreamSessionId', null)
  fastify.decorateRequest('providerToken', null)

  // In-flight JSON requests finish on close; open SSE streams are ended cleanly so clients
  // reconnect (to another replica) instead of waiting on a socket that will never speak.
  fastify.addHook('preClose', async () => {
    for (const reply of streams) reply.raw.end()
  })
  fastify.addHook('onClose', async () => { await agent.close() })

  for (const route of routes) {
    const target = new URL(route.targetUrl)
    await fastify.register(async function proxiedRoute (child) {
      // Routes with tool rules get the bytes: tool-calls refuses what is not strict UTF-8.
      const parseAs = fastify.toolCalls.readsBodies(route) ? 'buffer' : 'string'
      child.addContentTypeParser(['application/json', 'text/plain'], { parseAs, bodyLimit: PROXY_BODY_LIMIT }, (_request, body, done) => { done(null, body) })

      // One callback-style hook for the three checks: each async hook costs the hot path a
      // promise and a trip through Fastify's hook runner.
      const bearer = fastify.checkBearer(route)
      child.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
        try {
          const origin = request.headers.origin
          if (origin !== undefined && !fastify.isOriginAllowed(origin)) {
            throw new OAuthError('access_denied', `Origin ${origin} is not allowed`, { reason: 'origin' })
          }
          bearer(request)
          const given = request.headers['mcp-session-id']
          if (typeof given === 'string') {
            const upstreamId = sessions.unwrap(given, route.pattern, (request.auth as NonNullable<FastifyRequest['auth']>).sub)
            if (upstreamId === null) throw new OAuthError('access_denied', 'This MCP session belongs to another user or route', { reason: 'session' })
            request.upstreamSessionId = upstreamId
          }
        } catch (err) {
          done(err as Error)
          return
        }
        done()
      })
      // prom-client hashes the label set on every inc(); the bound child per status does it once.
      const proxiedByStatus = new Map<number, { inc: () => void }>()
      child.addHook('preHandler', fastify.toolCalls.inspect(route))
      if (route.upstreamAuth === 'provider_token') child.addHook('preHandler', providerToken(route))
      child.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
        let counter = proxiedByStatus.get(reply.statusCode)
        if (counter === undefined) {
          counter = metrics.proxied.labels({ route: route.pattern, status: reply.statusCode })
          proxiedByStatus.set(reply.statusCode, counter)
        }
        counter.inc()
        fastify.toolCalls.finish(route, request, reply)
        done()
      })

      await child.register(httpProxy, {
        upstream: target.origin,
        prefix: route.pattern,
        rewritePrefix: target.pathname,
        routes: ['/'],
        httpMethods: ['GET', 'POST', 'DELETE'],
        undici: agent,
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
          rewriteRequestHeaders: (request, headers) => upstreamRequestHeaders(route, request as FastifyRequest, headers),
          rewriteHeaders: (headers, request) => clientResponseHeaders(route, headers, request as FastifyRequest),
          onResponse: (_request, reply, res) => { relay(route, reply as FastifyReply, res as unknown as UpstreamResponse) },
          onError: (reply, { error }) => { upstreamFailure(route, reply as unknown as FastifyReply, error) }
        }
      })
    })
  }

  /** Fetches the user's provider token before forwarding; a dead grant sends the client to authorize again. */
  function providerToken (route: RouteConfig) {
    return async function withProviderToken (request: FastifyRequest, reply: FastifyReply): Promise<void> {
      try {
        request.providerToken = await fastify.providerTokens.accessTokenFor((request.auth as NonNullable<FastifyRequest['auth']>).sub)
      } catch (err) {
        if (!(err instanceof ProviderTokenError)) throw err
        if (err.kind === 'reauthorize') throw unauthorized(route, { description: err.message, reason: 'provider_reauthorize' })
        metrics.upstreamErrors.inc({ route: route.pattern, kind: 'provider' })
        return await reply.code(502).send({ error: 'bad_gateway', error_description: err.message, route: route.pattern })
      }
    }
  }

  function upstreamRequestHeaders (route: RouteConfig, request: FastifyRequest, received: IncomingHttpHeaders): IncomingHttpHeaders {
    const headers = withoutClientOnlyHeaders(received)
    if (request.upstreamSessionId !== null) headers['mcp-session-id'] = request.upstreamSessionId
    // The addresses TRUST_PROXY vouches for, ending with the peer's (request.ips exists only when it trusts a hop).
    const trusted = request.ips
    headers['x-forwarded-for'] = trusted === undefined || trusted.length === 1 ? request.socket.remoteAddress ?? '' : trusted.reverse().join(', ')
    headers['x-forwarded-proto'] = publicProto
    headers['x-forwarded-host'] = publicUrl.host
    headers['x-request-id'] = request.id
    fastify.tracing?.upstreamStart(request, route.targetUrl, headers)
    if (route.upstreamAuth === 'provider_token' && route.upstreamHeader !== undefined) {
      const name = route.upstreamHeader.name
      headers[name] = name === 'authorization' ? `Bearer ${request.providerToken ?? ''}` : request.providerToken ?? ''
    } else if (route.upstreamAuth === 'identity') {
      headers.authorization = `Bearer ${fastify.tokens.identityToken(request.auth as NonNullable<FastifyRequest['auth']>, route.targetUrl)}`
    } else if (route.upstreamHeader !== undefined) {
      headers[route.upstreamHeader.name] = route.upstreamHeader.value
    }
    return headers
  }

  function clientResponseHeaders (route: RouteConfig, headers: IncomingHttpHeaders, request: FastifyRequest): IncomingHttpHeaders {
    const upstreamId = headers['mcp-session-id']
    if (typeof upstreamId === 'string' && request.auth !== null) {
      headers['mcp-session-id'] = sessions.wrap(upstreamId, route.pattern, request.auth.sub)
    }
    // The upstream must not set cookies on the gateway's origin (consent cookies live there).
    delete headers['set-cookie']
    return headers
  }

  function relay (route: RouteConfig, reply: FastifyReply, res: UpstreamResponse): void {
    fastify.tracing?.upstreamEnd(reply.request, res.statusCode)
    if (res.statusCode === 401) {
      // The upstream refused the gateway's own credentials; passing its challenge on would send
      // the client to log in somewhere else.
      res.stream.resume()
      metrics.upstreamErrors.inc({ route: route.pattern, kind: 'upstream_401' })
      reply.removeHeader('www-authenticate')
      reply.code(502).type('application/json').send({
        error: 'bad_gateway', error_description: `The upstream of ${route.pattern} refused the gateway's credentials`, route: route.pattern
      })
      return
    }
    const type = res.headers['content-type'] ?? ''
    const watched = fastify.toolCalls.watches(reply.request)
    if (type.startsWith('text/event-stream')) {
      streams.add(reply)
      reply.raw.once('close', () => streams.delete(reply))
      // A stream may stay quiet for minutes: CONNECTION_TIMEOUT_MS must not cut it (Node sets it
      // again for the connection's next request).
      reply.raw.setTimeout(0)
      const stream = watched ? fastify.toolCalls.rewriteSse(route, reply.request, res.stream) : res.stream
      // A filtered stream is shorter than the length the upstream declared (the SDK sends one).
      if (watched) reply.removeHeader('content-length')
      reply.header('x-accel-buffering', 'no').header('cache-control', 'no-cache').send(stream)
      // Fastify writes a stream's headers with its first chunk; clients must see the stream open now.
      if (reply.raw.getHeader('content-type') !== undefined && !reply.raw.headersSent) reply.raw.flushHeaders()
      return
    }
    const length = Number(res.headers['content-length'] ?? Infinity)
    // A tools/list answer is always read whole: the policy may have to take tools out of it.
    const mustRead = watched && reply.request.toolCalls?.calls.some(c => c.method === 'tools/list') === true
    if (length > BUFFER_LIMIT && !mustRead) {
      // Large or unsized bodies stream through, so memory stays flat whatever the upstream sends.
      reply.send(res.stream)
      return
    }
    // Small answers: one buffered write is cheaper than piping a stream.
    const chunks: Buffer[] = []
    res.stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    res.stream.once('end', () => {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
      reply.send(watched && type.startsWith('application/json') ? fastify.toolCalls.rewriteJson(route, reply.request, body) : body)
    })
    res.stream.once('error', (err: Error) => { upstreamFailure(route, reply, err) })
  }

  function upstreamFailure (route: RouteConfig, reply: FastifyReply, error: Error & { statusCode?: number }): void {
    const timeout = error.statusCode === 504
    metrics.upstreamErrors.inc({ route: route.pattern, kind: timeout ? 'timeout' : 'unreachable' })
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy()
      return
    }
    reply.code(timeout ? 504 : 502).type('application/json').send({
      error: timeout ? 'gateway_timeout' : 'bad_gateway',
      error_description: timeout
        ? `The upstream of ${route.pattern} did not answer in time`
        : `The upstream of ${route.pattern} could not be reached`,
      route: route.pattern
    })
  }
}

export default fp(proxyPlugin, { name: 'proxy', fastify: '5.x', dependencies: ['config', 'keys', 'tokens', 'security', 'metrics', 'tool-calls', 'provider-tokens'] })
