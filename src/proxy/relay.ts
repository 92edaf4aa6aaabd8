import type { OutgoingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AnswerWatch } from '../plugins/tool-calls.js'
import { HOP_BY_HOP } from './client-headers.js'
import type { ProxyErrorSender } from './proxy-errors.js'

/** Upstream answers up to this size, sized or not, are buffered and sent in one write. */
const BUFFER_LIMIT = 1024 * 1024

/** What every exchange of one route shares, built once at start-up. */
export interface Relay {
  refuse: ProxyErrorSender
  /** Open SSE answers, ended cleanly on shutdown. */
  streams: Set<FastifyReply>
  /** The Mcp-Session-Id the client sees for the upstream's own (bound to the caller). */
  bindSession: (upstreamId: string, request: FastifyRequest) => string
  /** What the tool interceptor does with this request's answer (null: it passes untouched). */
  watch: (request: FastifyRequest) => AnswerWatch | null
  /** The upstream's status, when its answer starts (tracing's upstream hop); null when tracing is off. */
  upstreamStatus: ((request: FastifyRequest, status: number) => void) | null
}

const enum Mode { Waiting, Buffering, Streaming, Discarding, Over }

/**
 * One proxied request's upstream side, as an undici dispatch handler: an answer up to 1 MiB,
 * sized or not, is gathered straight from undici's callbacks (no body stream, no promise) and
 * sent in one write with its Content-Length; an event stream, or a larger body, is piped
 * through a Readable that honours the client's back-pressure, SSE headers flushed at once and
 * each event forwarded as it comes. A client that goes away aborts the upstream request.
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  private mode = Mode.Waiting
  private abortUpstream: ((err?: Error) => void) | null = null
  private clientGone = false
  private resume: (() => void) | null = null
  private chunks: Buffer[] = []
  private buffered = 0
  private readsWhole = false
  private stream: Readable | null = null
  private watched: AnswerWatch | null = null
  private rewritesJson = false
  private status = 0
  private headers: OutgoingHttpHeaders | null = null

  constructor (private readonly relay: Relay, private readonly request: FastifyRequest, private readonly reply: FastifyReply) {
    reply.raw.once('close', () => {
      if (this.mode === Mode.Over) return
      this.clientGone = true
      this.abortUpstream?.()
    })
  }

  onConnect (abort: (err?: Error) => void): void {
    this.abortUpstream = abort
    if (this.clientGone) abort()
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const { relay, request, reply } = this
    relay.upstreamStatus?.(request, statusCode)
    if (statusCode === 401) {
      // The upstream refused the gateway's own credentials; passing its challenge on would send
      // the client to log in somewhere else.
      this.mode = Mode.Discarding
      relay.refuse(reply, 'upstream_401')
      return true
    }
    const headers = this.clientHeaders(rawHeaders)
    const type = (headers['content-type'] as string | undefined) ?? ''
    this.watched = relay.watch(request)
    if (type.startsWith('text/event-stream')) {
      reply.code(statusCode).headers(headers)
      this.openStream(resume)
      relay.streams.add(reply)
      reply.raw.once('close', () => relay.streams.delete(reply))
      // A stream may stay quiet for minutes: CONNECTION_TIMEOUT_MS must not cut it (Node sets it
      // again for the connection's next request).
      reply.raw.setTimeout(0)
      const stream = this.watched !== null ? this.watched.sse(this.stream as Readable) : this.stream as Readable
      // A filtered stream is shorter than the length the upstream declared (the SDK sends one).
      if (this.watched !== null) reply.removeHeader('content-length')
      reply.header('x-accel-buffering', 'no').header('cache-control', 'no-cache').send(stream)
      // Fastify writes a stream's headers with its first chunk; clients must see the stream open now.
      if (!reply.raw.headersSent) reply.raw.flushHeaders()
      return true
    }
    this.status = statusCode
    this.headers = headers
    this.readsWhole = this.watched?.readWhole === true
    if (Number(headers['content-length'] ?? 0) > BUFFER_LIMIT && !this.readsWhole) {
      // Large bodies stream through, so memory stays flat whatever the upstream sends.
      this.startStreaming(resume)
      return true
    }
    // Headers wait for the body: a failure before its end is answered 502 without them. MCP
    // servers send their JSON chunked, without a length: it is gathered too, and goes out in
    // one write with its Content-Length, unless it outgrows the buffer.
    this.mode = Mode.Buffering
    this.resume = resume
    this.rewritesJson = this.watched !== null && type.startsWith('application/json')
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.mode === Mode.Buffering) {
      this.chunks.push(chunk)
      this.buffered += chunk.length
      if (this.buffered <= BUFFER_LIMIT || this.readsWhole) return true
      // An unsized body that outgrew the buffer: what came so far leads the stream.
      this.startStreaming(this.resume as () => void)
      let more = true
      for (const gathered of this.chunks) more = (this.stream as Readable).push(gathered)
      this.chunks = []
      return more
    }
    if (this.mode === Mode.Streaming) return (this.stream as Readable).push(chunk)
    return true
  }

  onComplete (): void {
    const mode = this.mode
    this.mode = Mode.Over
    if (mode === Mode.Streaming) {
      (this.stream as Readable).push(null)
    } else if (mode === Mode.Buffering) {
      const chunks = this.chunks
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
      this.reply.code(this.status).headers(this.headers as OutgoingHttpHeaders).send(this.rewritesJson ? (this.watched as AnswerWatch).json(body) : body)
    }
  }

  onError (err: Error): void {
    const mode = this.mode
    this.mode = Mode.Over
    if (mode === Mode.Streaming) {
      (this.stream as Readable).destroy(err)
      return
    }
    if (this.clientGone || mode === Mode.Discarding) return
    if (this.reply.sent || this.reply.raw.headersSent) {
      this.reply.raw.destroy()
      return
    }
    this.relay.refuse(this.reply, (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT' ? 'timeout' : 'unreachable')
  }

  private startStreaming (resume: () => void): void {
    this.reply.code(this.status).headers(this.headers as OutgoingHttpHeaders)
    this.openStream(resume)
    this.reply.send(this.stream)
  }

  private openStream (resume: () => void): void {
    this.mode = Mode.Streaming
    this.resume = resume
    // undici pauses when a push is refused; reading again resumes it.
    this.stream = new Readable({ read: () => { this.resume?.() } })
  }

  /**
   * The upstream's headers as the client gets them: byte for byte (latin1), without hop-by-hop
   * ones, without Set-Cookie (consent cookies live on the gateway's origin), and with the
   * upstream's session id bound to the caller.
   */
  private clientHeaders (raw: Buffer[]): OutgoingHttpHeaders {
    const headers: OutgoingHttpHeaders = {}
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1').toLowerCase()
      if (HOP_BY_HOP.has(name) || name === 'set-cookie') continue
      const value = raw[i + 1].toString('latin1')
      const seen = headers[name]
      if (seen === undefined) headers[name] = value
      else headers[name] = Array.isArray(seen) ? [...seen, value] : [String(seen), value]
    }
    const session = headers['mcp-session-id']
    if (typeof session === 'string' && this.request.auth !== null) headers['mcp-session-id'] = this.relay.bindSession(session, this.request)
    return headers
  }
}
