import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'

/**
 * How a route's upstream learns who calls (config `upstream_auth`): one strategy per kind, chosen
 * once per route at start-up. `prepare` runs before forwarding when the strategy needs to fetch
 * something; `apply` sets the upstream request's headers (never the client's Authorization).
 */
export interface UpstreamCredentials {
  prepare?: preHandlerAsyncHookHandler
  apply: (request: FastifyRequest, headers: IncomingHttpHeaders) => void
}
