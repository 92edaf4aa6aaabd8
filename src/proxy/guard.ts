import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { RouteConfig } from '../config/config-file.js'
import { OAuthError } from '../oauth/errors.js'
import type { SessionBinding } from './session-binding.js'

export interface GuardDeps {
  isOriginAllowed: (origin: string) => boolean
  /** The route's bearer check (tokens plugin): sets request.auth or throws the challenge. */
  bearer: (request: FastifyRequest) => void
  sessions: SessionBinding
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
 * this route, and an Mcp-Session-Id handed out to this subject on this route.
 */
export function guard (route: RouteConfig, deps: GuardDeps): onRequestHookHandler {
  const { isOriginAllowed, bearer, sessions } = deps
  return function guardRoute (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) {
    try {
      const origin = request.headers.origin
      if (origin !== undefined && !isOriginAllowed(origin)) {
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
  }
}
