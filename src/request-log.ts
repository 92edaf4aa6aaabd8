import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'

/** What a load balancer's or tracer's id looks like; anything else could forge or flood log lines. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The client's or load balancer's X-Request-Id when it is well-formed, else a fresh UUID. */
export function requestId (req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

/**
 * The proxied routes' child-logger factory: no pino child per request (its bindings are
 * serialised for each one); their lines carry the request id themselves (logFields).
 */
export const noChildLogger = (logger: FastifyBaseLogger): FastifyBaseLogger => logger

/** The request id for a line, when the request's logger does not bind it already (noChildLogger). */
export function logFields (request: FastifyRequest): { reqId?: string } {
  return request.log === request.server.log ? { reqId: request.id } : {}
}

/**
 * One log line per request, written when it completes (Fastify writes two by default, which
 * costs the proxied path about a fifth of its throughput). Paths only: query strings can
 * carry codes and states.
 */
export class OneLineRequestLog extends LogController {
  incomingRequest (): void {}

  requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = { ...logFields(request), method: request.method, path: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }
    if (error != null) reply.log.error({ ...line, err: error }, 'request errored')
    else reply.log.info(line, 'request')
  }
}
