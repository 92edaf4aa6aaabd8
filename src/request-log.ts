import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'

/** One tools/call's audit record (plugins/tool-calls.ts). */
export interface AuditRecord {
  route: string
  tool: string
  outcome: string
  ms: number
  sub?: string
  email?: string
  client?: string
  /** Only on routes with audit_arguments: anything the client sent, so it keeps the redact pass. */
  arguments?: unknown
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The audit record of the request's (first) tools/call, which its one log line carries. */
    audit: AuditRecord | null
  }
}

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

/** The root logger without pino's redact pass, made once per root logger (see unredacted). */
const plainLoggers = new WeakMap<FastifyBaseLogger, FastifyBaseLogger>()

/**
 * For lines built only from fields that cannot hold a credential (request id, method, path
 * without its query, status, time; the audit record without arguments): the same logger and
 * destination without the redact pass, which walks every line's object for the REDACT paths
 * (about a tenth of the proxied path's CPU). Per-request child loggers (the OAuth endpoints)
 * keep theirs: deriving one per request would cost more than it saves.
 */
export function unredacted (request: FastifyRequest): FastifyBaseLogger {
  const logger = request.log
  if (logger !== request.server.log) return logger
  let plain = plainLoggers.get(logger)
  if (plain === undefined) plainLoggers.set(logger, plain = logger.child({}, { redact: [] }))
  return plain
}

/**
 * One log line per request, written when it completes (Fastify writes two by default, which
 * costs the proxied path about a fifth of its throughput). Paths only: query strings can
 * carry codes and states.
 */
export class OneLineRequestLog extends LogController {
  incomingRequest (): void {}

  requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const url = request.url
    const query = url.indexOf('?')
    const path = query === -1 ? url : url.slice(0, query)
    const ms = Math.round(reply.elapsedTime * 10) / 10
    // pino leaves out undefined fields: one object shape per kind of line, no spread.
    const audit = request.audit ?? undefined
    const line = request.log === request.server.log
      ? { reqId: request.id, method: request.method, path, status: reply.statusCode, ms, audit }
      : { method: request.method, path, status: reply.statusCode, ms, audit }
    if (error != null) reply.log.error({ ...line, err: error }, 'request errored')
    else (audit?.arguments === undefined ? unredacted(request) : reply.log).info(line, 'request')
  }
}
