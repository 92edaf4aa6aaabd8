import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import {
  ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace,
  type Attributes, type Context, type Span, type Tracer
} from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler,
  TracerProvider, type Sampler, type SpanExporter
} from '@opentelemetry/sdk-trace'
import type { TracingSettings } from './otel-settings.js'

/** What a request span is told when it ends; read from the request by the plugin. */
export interface RequestOutcome {
  route: string
  status: number
  clientId?: string
  email?: string
  /** JSON-RPC methods of the body, in order (only on routes that read bodies). */
  methods?: string[]
  /** tools/call names. */
  tools?: string[]
}

interface RequestSpans {
  span: Span
  method: string
  upstream: Span | null
  upstreamStartedAt: number
}

function sampler (settings: TracingSettings): Sampler {
  const ratio = new TraceIdRatioBasedSampler(settings.ratio)
  switch (settings.sampler) {
    case 'always_on': return new AlwaysOnSampler()
    case 'always_off': return new AlwaysOffSampler()
    case 'traceidratio': return ratio
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: ratio })
    default: return new ParentBasedSampler({ root: new AlwaysOnSampler() })
  }
}

/** Users are told apart in traces without their address being in them. */
export function emailHash (email: string): string {
  return createHash('sha256').update(email.toLowerCase()).digest('hex')
}

/**
 * The gateway's spans, with a tracer provider of its own (not the global one: a process may
 * run several apps, as the tests do). The request being served is found through an
 * AsyncLocalStorage, so provider calls deep inside a route become its children.
 */
export class GatewayTracing {
  readonly #provider: TracerProvider
  readonly #tracer: Tracer
  readonly #propagator = new W3CTraceContextPropagator()
  readonly #active = new AsyncLocalStorage<Context>()
  readonly #requests = new WeakMap<object, RequestSpans>()
  /** Route targets, parsed once (there are as many as routes). */
  readonly #targets = new Map<string, URL>()

  constructor (settings: TracingSettings, exporter: SpanExporter = new OTLPTraceExporter({ url: settings.url })) {
    this.#provider = new TracerProvider({
      sampler: sampler(settings),
      resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
      spanProcessors: [new BatchSpanProcessor({ exporter })]
    })
    this.#tracer = this.#provider.getTracer('mcp-gateway')
  }

  /** Opens the server span of a request, continuing the client's `traceparent`, and runs `next` inside it. */
  startRequest (request: object, headers: IncomingHttpHeaders, method: string, path: string, next: () => void): void {
    const parent = this.#propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter)
    const span = this.#tracer.startSpan(method, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': method, 'url.path': path }
    }, parent)
    this.#requests.set(request, { span, method, upstream: null, upstreamStartedAt: 0 })
    this.#active.run(trace.setSpan(parent, span), next)
  }

  /** Starts the upstream call's span and puts its context in the headers sent upstream. */
  upstreamStart (request: object, targetUrl: string, headers: IncomingHttpHeaders): void {
    const spans = this.#requests.get(request)
    if (spans === undefined) return
    let target = this.#targets.get(targetUrl)
    if (target === undefined) {
      target = new URL(targetUrl)
      this.#targets.set(targetUrl, target)
    }
    const span = this.#tracer.startSpan(`${target.pathname} upstream`, {
      kind: SpanKind.CLIENT,
      attributes: { 'server.address': target.hostname, 'server.port': Number(target.port || (target.protocol === 'https:' ? 443 : 80)), 'url.path': target.pathname }
    }, trace.setSpan(ROOT_CONTEXT, spans.span))
    delete headers.traceparent
    delete headers.tracestate
    this.#propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter)
    spans.upstream = span
    spans.upstreamStartedAt = performance.now()
  }

  /** The upstream answered (headers received). */
  upstreamEnd (request: object, status: number): void {
    const spans = this.#requests.get(request)
    if (spans?.upstream == null) return
    spans.upstream.setAttribute('http.response.status_code', status)
    if (status >= 500) spans.upstream.setStatus({ code: SpanStatusCode.ERROR })
    this.#endUpstream(spans)
  }

  endRequest (request: object, outcome: RequestOutcome): void {
    const spans = this.#requests.get(request)
    if (spans === undefined) return
    this.#requests.delete(request)
    if (spans.upstream !== null) {
      // No answer reached relay(): unreachable, timed out, or the client left.
      spans.upstream.setStatus({ code: SpanStatusCode.ERROR, message: 'no upstream answer' })
      this.#endUpstream(spans)
    }
    const { span } = spans
    span.updateName(`${spans.method} ${outcome.route}`)
    const attributes: Attributes = { 'http.route': outcome.route, 'http.response.status_code': outcome.status }
    if (outcome.clientId !== undefined) attributes['mcpgw.client_id'] = outcome.clientId
    if (outcome.email !== undefined) attributes['mcpgw.user.email_sha256'] = emailHash(outcome.email)
    if (outcome.methods !== undefined && outcome.methods.length > 0) {
      attributes['mcp.method.name'] = outcome.methods.length === 1 ? outcome.methods[0] : outcome.methods
    }
    if (outcome.tools !== undefined && outcome.tools.length > 0) {
      attributes['gen_ai.tool.name'] = outcome.tools.length === 1 ? outcome.tools[0] : outcome.tools
    }
    span.setAttributes(attributes)
    if (outcome.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
    span.end()
  }

  /** A call to another service (identity provider, client metadata document) as a child of the current request. */
  async call<T>(name: string, attributes: Attributes, run: () => Promise<T>): Promise<T> {
    const span = this.#tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, this.#active.getStore() ?? ROOT_CONTEXT)
    try {
      return await run()
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message })
      span.setAttribute('error.type', (err as Error).name)
      throw err
    } finally {
      span.end()
    }
  }

  /** Sends what is buffered and stops. */
  async shutdown (): Promise<void> {
    await this.#provider.shutdown()
  }

  #endUpstream (spans: RequestSpans): void {
    spans.span.setAttribute('mcpgw.upstream.duration_ms', Math.round((performance.now() - spans.upstreamStartedAt) * 1000) / 1000)
    spans.upstream?.end()
    spans.upstream = null
  }
}
