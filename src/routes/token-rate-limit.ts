import type { FastifyRequest } from 'fastify'
import { parseClientAuthentication } from '../oauth/client-auth.js'
import type { Params } from '../oauth/params.js'

/** The client a request claims to be, for rate limiting only (nothing is verified yet). */
export function claimedClientId (request: FastifyRequest): string {
  try {
    // A preHandler runs after validation: the body is the form the route's schema admitted.
    return parseClientAuthentication(request.headers.authorization, request.body as Params).clientId
  } catch {
    return ''
  }
}

/**
 * The token, revocation and introspection endpoints' limit, per client and IP, after the body
 * is parsed: one noisy client cannot lock out the others behind the same egress IP, and one IP
 * cannot hammer a client's tokens.
 */
export const TOKEN_RATE_LIMIT = {
  max: 120,
  timeWindow: '1 minute',
  hook: 'preHandler' as const,
  keyGenerator: (request: FastifyRequest) => `${claimedClientId(request)}|${request.ip}`
}
