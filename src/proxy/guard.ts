import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { RouteConfig } from '../config/config-file.js'
import type { ProxyErrorSender } from './proxy-errors.js'
import type { SessionBinding } from './session-binding.js'

export interface GuardDeps {
  isOriginAllowed: (origin: string) => boolean
  /** The route's bearer check (tokens plugin): sets request.auth or throws the challenge. */
  bearer: (request: FastifyRequest) => void
  sessions: SessionBinding
  refuse: ProxyErrorSender
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The upstream's own Mcp-Session-Id, once the client's bound one has been checked. */
    upstreamSessionId: string | null
  }
}

/**
 * The route's first step, one callback-style onRequest hook (each async hook costs a promise and
 * a trip through Fastify's hook runner): a browser Origin the gateway allows, a bearer token for
 * this route, and an Mcp-Session-Id handed out to this subject on this route. A refusal is
 * answered here (the hook then does not call done); a token problem goes to the error handler
 * as its OAuth challenge.
 */
export function guard (route: RouteConfig, deps: GuardDeps): onRequestHookHandler {
  const { isOriginAllowed, bearer, sessions, refuse } = deps
  return function guardRoute (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    const origin = request.headers.origin
    if (origin !== undefined && !isOriginAllowed(origin)) {
      refuse(reply, 'origin', origin)
      return
    }
    try {
      bearer(request)
    } catch (err) {
      done(err as Error)
      return
    }
    const given = request.headers['mcp-session-id']
    if (typeof given === 'string') {
      const upstreamId = sessions.unwrap(given, route.pattern, (request.auth as NonNullable<FastifyRequest['auth']>).sub)
      if (upstreamId === null) {
        refuse(reply, 'session')
        return
      }
      request.upstreamSessionId = upstreamId
    }
    done()
  }
}
