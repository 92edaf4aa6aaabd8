import type { FastifyReply } from 'fastify'

/**
 * What the proxy answers on its own behalf, by kind: the guard's refusals (a browser Origin the
 * gateway does not allow, a session id handed out to someone else) and the upstream's failures.
 * Token refusals are not here: they are OAuth challenges (oauth/challenge.ts).
 */
export type ProxyFailure = 'origin' | 'session' | 'unreachable' | 'timeout' | 'upstream_401' | 'provider'

/** The failures that are the upstream's (or the provider's), counted in mcpgw_upstream_errors_total. */
export type UpstreamFailure = Exclude<ProxyFailure, 'origin' | 'session'>

interface FailureShape { status: number, error: string, describe: (route: string, detail: string) => string }

/**
 * One error code per cause. The guard's refusals have their own codes rather than OAuth's
 * `access_denied`: a client must not take a wrong Origin or a foreign session for a login the
 * user declined, and logging in again fixes neither.
 */
const FAILURES: Record<ProxyFailure, FailureShape> = {
  origin: { status: 403, error: 'origin_not_allowed', describe: (_route, origin) => `Origin ${origin} is not allowed` },
  session: { status: 403, error: 'session_not_bound', describe: route => `This MCP session was not opened by this user on ${route}` },
  unreachable: { status: 502, error: 'bad_gateway', describe: route => `The upstream of ${route} could not be reached` },
  timeout: { status: 504, error: 'gateway_timeout', describe: route => `The upstream of ${route} did not answer in time` },
  upstream_401: { status: 502, error: 'bad_gateway', describe: route => `The upstream of ${route} refused the gateway's credentials` },
  provider: { status: 502, error: 'bad_gateway', describe: (_route, detail) => detail }
}

export type ProxyErrorSender = (reply: FastifyReply, failure: ProxyFailure, detail?: string) => void

/**
 * The route's one place for the proxy's own error answers: JSON naming the route
 * (`{ error, error_description, route }`) with the failure's status. Bodies that never vary are
 * serialised once at start-up. Upstream failures are counted by kind as they are answered.
 */
export function proxyErrors (pattern: string, count: (failure: UpstreamFailure) => void): ProxyErrorSender {
  const body = (failure: ProxyFailure, detail: string): string => {
    const { error, describe } = FAILURES[failure]
    return JSON.stringify({ error, error_description: describe(pattern, detail), route: pattern })
  }
  const fixed = new Map<ProxyFailure, string>((['unreachable', 'timeout', 'upstream_401', 'session'] as const).map(failure => [failure, body(failure, '')]))
  return (reply, failure, detail = '') => {
    if (failure !== 'origin' && failure !== 'session') count(failure)
    reply.code(FAILURES[failure].status).type('application/json; charset=utf-8').send(fixed.get(failure) ?? body(failure, detail))
  }
}
