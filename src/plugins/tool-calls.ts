import { pipeline, type Readable } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify'
import type { RouteConfig } from '../config/config-file.js'
import { INVALID_REQUEST, jsonRpcError, PARSE_ERROR, parseMessages, POLICY_DENIED, readMessages, rewriteMessages, type McpCall, type ReadResult } from '../mcp/json-rpc.js'
import { decodeStrictBody } from '../mcp/strict-body.js'
import { SseMessages } from '../mcp/sse-messages.js'
import { insufficientScope } from '../oauth/challenge.js'
import type { Caller } from '../policy/tool-policy.js'
import { logFields, unredacted, type AuditRecord } from '../request-log.js'
import { grantedScopes } from '../tokens/granted-scopes.js'

interface ToolCallState {
  calls: McpCall[]
  caller: Caller
  startedAt: number
  /** Response outcome per request id, as seen in the upstream's answer. */
  outcomes: Map<string | number | null, 'ok' | 'error'>
}

/** What the relay does with an answer the interceptor watches (tools/list filtering, call outcomes). */
export interface AnswerWatch {
  /** The answer must be read whole, whatever its size: the policy may take tools out of it. */
  readWhole: boolean
  json: (body: Buffer) => Buffer
  sse: (stream: Readable) => Readable
}

/** One route's tool interceptor, built once at start-up (see proxy/pipeline.ts). */
export interface ToolInterceptor {
  /** Whether the route reads request bodies strictly (tool rules or audit): its parser must hand over bytes. */
  readsBodies: boolean
  /** preHandler: 2026-07-28 header checks, tool policy, step-up challenges. */
  inspect: preHandlerHookHandler
  /** What the relay must do with this request's answer; null when it passes untouched. */
  watch: (request: FastifyRequest) => AnswerWatch | null
  /** onResponse: one audit record and metrics per tools/call. */
  finish: (request: FastifyRequest, reply: FastifyReply) => void
}

export interface ToolCalls {
  interceptor: (route: RouteConfig) => ToolInterceptor
}

declare module 'fastify' {
  interface FastifyInstance {
    toolCalls: ToolCalls
  }
  interface FastifyRequest {
    toolCalls: ToolCallState | null
  }
}

/**
 * Routes with tool rules or argument audit read every body strictly; plain routes parse only
 * bodies that mention "tools/" (for the audit record), so the hot path pays nothing there.
 */
function readsBodies (route: RouteConfig): boolean {
  return route.toolPolicy !== undefined || route.auditArguments
}

/** Distinct tool names per route that get their own metric label; the rest count as "other". */
const MAX_TOOL_LABELS = 100

interface ToolMetrics {
  duration: { observe: (seconds: number) => void }
  outcome: (outcome: string) => { inc: () => void }
}

/**
 * What the gateway does with MCP tool calls on their way through: per-tool policy and scopes,
 * the 2026-07-28 Mcp-Method/Mcp-Name header checks, tools/list filtering (JSON and SSE), and
 * the audit trail. On routes with tool rules or argument audit every body is read strictly
 * (refused with -32700 when it is not plain UTF-8 JSON) and decisions follow the parsed value;
 * on plain routes bodies that do not mention "tools/" are not parsed.
 */
async function toolCallsPlugin (fastify: FastifyInstance): Promise<void> {
  const { Counter, Histogram } = fastify.metrics.client
  const calls = new Counter({ name: 'mcpgw_tool_calls_total', help: 'tools/call requests by route, tool and outcome', labelNames: ['route', 'tool', 'outcome'] })
  const duration = new Histogram({ name: 'mcpgw_tool_call_duration_seconds', help: 'tools/call duration by route and tool', labelNames: ['route', 'tool'], buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120] })
  /**
   * Each route's tools and their metric children, made once per label set (prom-client hashes
   * the labels on every call otherwise). Tool names come from clients: past MAX_TOOL_LABELS
   * distinct ones per route, the rest share "other".
   */
  const byRoute = new Map<string, Map<string, ToolMetrics>>()
  const toolMetrics = (route: string, tool: string): ToolMetrics => {
    let tools = byRoute.get(route)
    if (tools === undefined) byRoute.set(route, tools = new Map())
    let found = tools.get(tool)
    if (found !== undefined) return found
    const label = tools.size < MAX_TOOL_LABELS ? tool : 'other'
    found = tools.get(label)
    if (found === undefined) {
      const outcomes = new Map<string, { inc: () => void }>()
      found = {
        duration: duration.labels({ route, tool: label }),
        outcome: outcome => {
          let counter = outcomes.get(outcome)
          if (counter === undefined) outcomes.set(outcome, counter = calls.labels({ route, tool: label, outcome }))
          return counter
        }
      }
      tools.set(label, found)
    }
    return found
  }

  /**
   * The call's audit record rides on the request's one log line (request-log.ts); a batch's
   * further calls get a line of their own.
   */
  function audit (route: RouteConfig, request: FastifyRequest, call: McpCall, outcome: string, ms: number): void {
    const auth = request.auth
    const tool = call.name ?? ''
    const record: AuditRecord = { route: route.pattern, tool, outcome, ms: Math.round(ms * 10) / 10, sub: auth?.sub, email: auth?.email, client: auth?.client_id }
    if (route.auditArguments) record.arguments = call.arguments
    if (request.audit === null) request.audit = record
    else (route.auditArguments ? request.log : unredacted(request)).info({ ...logFields(request), audit: record }, 'tools/call')
    const metrics = toolMetrics(route.pattern, tool)
    metrics.outcome(outcome).inc()
    metrics.duration.observe(ms / 1000)
  }

  function headerMismatch (request: FastifyRequest, messages: McpCall[], batch: boolean): string | undefined {
    const method = request.headers['mcp-method']
    const name = request.headers['mcp-name']
    if (batch || messages.length !== 1) return 'Mcp-Method and Mcp-Name need a body with exactly one JSON-RPC message'
    if (method !== undefined && method !== messages[0].method) return `Mcp-Method "${String(method)}" does not match the body's method "${messages[0].method}"`
    if (name !== undefined && name !== messages[0].name) return `Mcp-Name "${String(name)}" does not match the body's "${messages[0].name ?? ''}"`
  }

  /** Every body on a route with tool rules, read strictly (see decodeStrictBody, parseMessages). */
  function readStrictly (request: FastifyRequest): ReadResult {
    const body = request.body
    if (body === undefined) {
      return request.method === 'POST' ? { unreadable: { code: PARSE_ERROR, message: 'Parse error: the POST has no body', id: null } } : { messages: [], batch: false }
    }
    const decoded = Buffer.isBuffer(body)
      ? decodeStrictBody(body, request.headers['content-type'], request.headers['content-encoding'])
      : { problem: 'the body could not be read' }
    if ('problem' in decoded) return { unreadable: { code: PARSE_ERROR, message: `Parse error: ${decoded.problem}`, id: null } }
    // The proxy forwards the text, which is the same bytes: nothing but what was judged goes upstream.
    request.body = decoded.text
    return parseMessages(decoded.text)
  }

  /** Applies the route's tool rules to a request; true when it answered the request itself. */
  function examine (route: RouteConfig, request: FastifyRequest, reply: FastifyReply): boolean {
    // A compressed answer cannot be read, so its tool list would pass unfiltered: ask for identity.
    if (route.toolPolicy !== undefined) delete request.raw.headers['accept-encoding']
    const checkHeaders = request.headers['mcp-method'] !== undefined || request.headers['mcp-name'] !== undefined
    let messages: McpCall[]
    let batch: boolean
    if (readsBodies(route)) {
      const read = readStrictly(request)
      if ('unreadable' in read) {
        const { id, code, message } = read.unreadable
        reply.code(400).type('application/json').send(jsonRpcError(id, code, message))
        return true
      }
      messages = read.messages
      batch = read.batch
    } else {
      const body = request.body
      if (request.method !== 'POST' || typeof body !== 'string') return false
      messages = readMessages(body, checkHeaders)
      // Only the header check needs it here: a plain route has no policy to refuse with.
      batch = checkHeaders && /^[\t\n\r ]*\[/.test(body)
    }
    if (checkHeaders && request.method === 'POST') {
      const problem = headerMismatch(request, messages, batch)
      if (problem !== undefined) {
        reply.code(400).type('application/json').send(jsonRpcError(messages[0]?.id ?? null, INVALID_REQUEST, problem))
        return true
      }
    }
    const auth = request.auth as NonNullable<FastifyRequest['auth']>
    const caller: Caller = { email: auth.email, clientId: auth.client_id, scopes: grantedScopes(auth) }
    const policy = route.toolPolicy
    const tools = messages.filter(m => m.method === 'tools/call' || m.method === 'tools/list')
    if (tools.length === 0) {
      // A GET stream can replay a tools/list answer (Last-Event-ID): filter whatever list it carries.
      if (request.method === 'GET' && policy !== undefined) request.toolCalls = { calls: [], caller, startedAt: performance.now(), outcomes: new Map() }
      return false
    }
    const refused = new Set<McpCall>()
    const refusals: object[] = []
    for (const call of tools) {
      if (call.method !== 'tools/call' || policy === undefined) continue
      const decision = policy.decide(call.name ?? '', caller)
      if (decision.allowed) continue
      if (decision.reason === 'insufficient_scope') {
        throw insufficientScope({ metadataUrl: route.metadataUrl, scopes: [...route.scopes, ...decision.needed] }, caller.scopes)
      }
      audit(route, request, call, 'denied', 0)
      const why = decision.reason === 'denied' ? 'is denied on this route' : `is not allowed for ${caller.email ?? auth.sub}`
      refused.add(call)
      refusals.push(jsonRpcError(call.id, POLICY_DENIED, `Tool "${call.name ?? ''}" ${why} by the gateway's policy`, { reason: decision.reason, tool: call.name }))
    }
    if (refusals.length > 0) {
      if (!batch) {
        reply.code(200).type('application/json').send(refusals[0])
        return true
      }
      // A batch is refused whole: running part of it would surprise the client more. Each of
      // its other requests is answered too, so no client waits for an id that never comes.
      const others = messages.filter(m => !m.notification && !refused.has(m))
        .map(m => jsonRpcError(m.id, POLICY_DENIED, 'Not run: another call in this batch was refused by the gateway\'s policy', { reason: 'batch_refused' }))
      reply.code(200).type('application/json').send([...refusals, ...others])
      return true
    }
    request.toolCalls = { calls: tools, caller, startedAt: performance.now(), outcomes: new Map() }
    return false
  }

  function rewriteJson (route: RouteConfig, state: ToolCallState, body: Buffer): Buffer {
    let parsed: unknown
    try {
      parsed = JSON.parse(body.toString('utf8'))
    } catch {
      return body
    }
    const result = rewriteMessages(parsed, message => observe(route, state, message))
    return result === undefined ? body : Buffer.from(JSON.stringify(result))
  }

  const toolCalls: ToolCalls = {
    interceptor: route => ({
      readsBodies: readsBodies(route),

      // Callback-style and synchronous: every proxied request passes here, and an async hook would
      // cost each one a promise even when the body is not about tools.
      inspect: function inspectToolCalls (request, reply, done) {
        let replied: boolean
        try {
          replied = examine(route, request, reply)
        } catch (err) {
          done(err as Error)
          return
        }
        if (!replied) done()
      },

      watch (request) {
        const state = request.toolCalls
        if (state === null) return null
        return {
          readWhole: state.calls.some(c => c.method === 'tools/list'),
          json: body => rewriteJson(route, state, body),
          // pipeline: an upstream error or a client that goes away tears down both sides.
          sse: stream => pipeline(stream, new SseMessages(message => observe(route, state, message)), () => {})
        }
      },

      finish (request, reply) {
        const state = request.toolCalls
        if (state === null) return
        const ms = performance.now() - state.startedAt
        for (const call of state.calls) {
          if (call.method !== 'tools/call') continue
          const outcome = state.outcomes.get(call.id) ?? (reply.statusCode >= 400 ? `http_${reply.statusCode}` : reply.raw.writableFinished ? 'ok' : 'aborted')
          audit(route, request, call, outcome, ms)
        }
      }
    })
  }

  /**
   * Records a call's outcome; returns a filtered tools/list answer when the policy hides tools.
   * An answer whose id matches no request of this body (an upstream that read the id another
   * way, a stream replaying an earlier answer) is filtered whenever it carries a tool list.
   */
  function observe (route: RouteConfig, state: ToolCallState, message: Record<string, unknown>): Record<string, unknown> | undefined {
    const call = state.calls.find(c => c.id === message.id && !c.notification)
    const result = message.result as { isError?: unknown, tools?: unknown } | undefined
    if (call?.method === 'tools/call') {
      state.outcomes.set(call.id, message.error !== undefined || result?.isError === true ? 'error' : 'ok')
      return undefined
    }
    const policy = route.toolPolicy
    if (policy === undefined || result === null || typeof result !== 'object' || !Array.isArray(result.tools)) return undefined
    const listed = result.tools as unknown[]
    const tools = listed.filter(t => t !== null && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string' && policy.visible((t as { name: string }).name, state.caller))
    return tools.length === listed.length ? undefined : { ...message, result: { ...result, tools } }
  }

  fastify.decorate('toolCalls', toolCalls)
  fastify.decorateRequest('toolCalls', null)
  fastify.decorateRequest('audit', null)
}

export default fp(toolCallsPlugin, { name: 'tool-calls', fastify: '5.x', dependencies: ['config', 'tokens', 'metrics'] })
