import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'
import type { RouteConfig } from '../config/config-file.js'
import type { AnswerWatch } from '../plugins/tool-calls.js'

/** Upstream answers up to this size are buffered and sent in one write. */
const BUFFER_LIMIT = 1024 * 1024

export interface UpstreamResponse { statusCode: number, headers: IncomingHttpHeaders, stream: Readable }
export type UpstreamErrorKind = 'upstream_401' | 'timeout' | 'unreachable'

export interface Relay {
  /** Sends the upstream's answer on: JSON buffered (one write), SSE piped with its headers flushed at once. */
  answer: (reply: FastifyReply, res: UpstreamResponse, watch: AnswerWatch | null) => void
  /** The upstream could not be reached or did not answer in time: 502/504, or the connection cut when already answering. */
  failure: (reply: FastifyReply, error: Error & { statusCode?: number }) => void
}

/**
 * The route's last step, built once per route. `streams` holds the open SSE answers (ended
 * cleanly on shutdown); `count` counts an upstream failure by kind.
 */
export function routeRelay (route: RouteConfig, streams: Set<FastifyReply>, count: (kind: UpstreamErrorKind) => void): Relay {
  function failure (reply: FastifyReply, error: Error & { statusCode?: number }): void {
    const timeout = error.statusCode === 504
    count(timeout ? 'timeout' : 'unreachable')
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

  function answer (reply: FastifyReply, res: UpstreamResponse, watch: AnswerWatch | null): void {
    if (res.statusCode === 401) {
      // The upstream refused the gateway's own credentials; passing its challenge on would send
      // the client to log in somewhere else.
      res.stream.resume()
      count('upstream_401')
      reply.removeHeader('www-authenticate')
      reply.code(502).type('application/json').send({
        error: 'bad_gateway', error_description: `The upstream of ${route.pattern} refused the gateway's credentials`, route: route.pattern
      })
      return
    }
    const type = res.headers['content-type'] ?? ''
    if (type.startsWith('text/event-stream')) {
      streams.add(reply)
      reply.raw.once('close', () => streams.delete(reply))
      // A stream may stay quiet for minutes: CONNECTION_TIMEOUT_MS must not cut it (Node sets it
      // again for the connection's next request).
      reply.raw.setTimeout(0)
      const stream = watch !== null ? watch.sse(res.stream) : res.stream
      // A filtered stream is shorter than the length the upstream declared (the SDK sends one).
      if (watch !== null) reply.removeHeader('content-length')
      reply.header('x-accel-buffering', 'no').header('cache-control', 'no-cache').send(stream)
      // Fastify writes a stream's headers with its first chunk; clients must see the stream open now.
      if (reply.raw.getHeader('content-type') !== undefined && !reply.raw.headersSent) reply.raw.flushHeaders()
      return
    }
    const length = Number(res.headers['content-length'] ?? Infinity)
    if (length > BUFFER_LIMIT && watch?.readWhole !== true) {
      // Large or unsized bodies stream through, so memory stays flat whatever the upstream sends.
      reply.send(res.stream)
      return
    }
    // Small answers: one buffered write is cheaper than piping a stream.
    const chunks: Buffer[] = []
    res.stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    res.stream.once('end', () => {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
      reply.send(watch !== null && type.startsWith('application/json') ? watch.json(body) : body)
    })
    res.stream.once('error', (err: Error) => { failure(reply, err) })
  }

  return { answer, failure }
}
