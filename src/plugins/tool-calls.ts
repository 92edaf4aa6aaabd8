import { pipeline, type Readable } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify'
import type { RouteConfig } from '../config/config-file.js'
import { INVALID_REQUEST, jsonRpcError, POLICY_DENIED, readMessages, type McpCall } from '../mcp/json-rpc.js'
import { SseMessages } from '../mcp/sse-messages.js'
import { insufficientScope } from '../oauth/challenge.js'
import type { Caller } from '../policy/tool-policy.js'

interface ToolCallState {
  calls: McpCall[]
  caller: Caller
  startedAt: number
  /** Response outcome per request id, as seen in the upstream's answer. */
  outcomes: Map<string | number | null, 'ok' | 'error'>
}

export interface ToolCalls {
  /** preHandler for a route: 2026-07-28 header checks, tool policy, step-up challenges. */
  inspect: (route: RouteConfig) => preHandlerHookHandler
  /** Whether the upstream answer must be looked at (tools/list filtering, call outcomes). */
  watches: (request: FastifyRequest) => boolean
  rewriteJson: (route: RouteConfig, request: FastifyRequest, body: Buffer) => Buffer
  rewriteSse: (route: RouteConfig, request: FastifyRequest, stream: Readable) => Readable
  /** onResponse: one audit record and metrics per tools/call. */
  finish: (route: RouteConfig, request: FastifyRequest, reply: FastifyReply) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    toolCalls: ToolCalls
  }
  interface FastifyRequest {
    toolCalls: ToolCallState | null
  }
}

/** Distinct tool names per route that get their own metric label; the rest count as "other". */
const MAX_TOOL_LABELS = 100

/**
 * What the gateway does with MCP tool calls on their way through: per-tool policy and scopes,
 * the 2026-07-28 Mcp-Method/Mcp-Name header checks, tools/list filtering (JSON and SSE), and
 * the audit trail. Requests that are not about tools are not parsed.
 */
async function toolCallsPlugin (fastify: FastifyInstance): Promise<void> {
  const { Counter, Histogram } = fastify.metrics.client
  const calls = new Counter({ name: 'mcpgw_tool_calls_total', help: 'tools/call requests by route, tool and outcome', labelNames: ['route', 'tool', 'outcome'] })
  const duration = new Histogram({ name: 'mcpgw_tool_call_duration_seconds', help: 'tools/call duration by route and tool', labelNames: ['route', 'tool'], buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120] })
  const labels = new Map<string, Set<string>>()
  const toolLabel = (route: string, tool: string): string => {
    let seen = labels.get(route)
    if (seen === undefined) labels.set(route, seen = new Set())
    if (seen.has(tool)) return tool
    if (seen.size >= MAX_TOOL_LABELS) return 'other'
    seen.add(tool)
    return tool
  }

  function audit (route: RouteConfig, request: FastifyRequest, call: McpCall, outcome: string, ms: number): void {
    const auth = request.auth
    const tool = call.name ?? ''
    const record: Record<string, unknown> = { route: route.pattern, tool, outcome, ms: Math.round(ms * 10) / 10, sub: auth?.sub, email: auth?.email, client: auth?.client_id }
    if (route.auditArguments) record.arguments = call.arguments
    request.log.info({ audit: record }, 'tools/call')
    const label = toolLabel(route.pattern, tool)
    calls.inc({ route: route.pattern, tool: label, outcome })
    duration.observe({ route: route.pattern, tool: label }, ms / 1000)
  }

  function headerMismatch (request: FastifyRequest, messages: McpCall[]): string | undefined {
    const method = request.headers['mcp-method']
    const name = request.headers['mcp-name']
    if (messages.length !== 1) return 'Mcp-Method needs a body with exactly one JSON-RPC message'
    if (method !== messages[0].method) return `Mcp-Method "${String(method)}" does not match the body's method "${messages[0].method}"`
    if (name !== undefined && name !== messages[0].name) return `Mcp-Name "${String(name)}" does not match the body's "${messages[0].name ?? ''}"`
  }

  /** Applies the route's tool rules to a POST; true when it answered the request itself. */
  function examine (route: RouteConfig, request: FastifyRequest, reply: FastifyReply): boolean {
    const body = request.body
    if (request.method !== 'POST' || typeof body !== 'string') return false
    const checkHeaders = request.headers['mcp-method'] !== undefined
    const messages = readMessages(body, checkHeaders)
    if (checkHeaders) {
      const problem = headerMismatch(request, messages)
      if (problem !== undefined) {
        reply.code(400).send(jsonRpcError(messages[0]?.id ?? null, INVALID_REQUEST, problem))
        return true
      }
    }
    const tools = messages.filter(m => m.method === 'tools/call' || m.method === 'tools/list')
    if (tools.length === 0) return false
    const auth = request.auth as NonNullable<FastifyRequest['auth']>
    const caller: Caller = { email: auth.email, scopes: auth.scope.split(' ') }
    const policy = route.toolPolicy
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
      refusals.push(jsonRpcError(call.id, POLICY_DENIED, `Tool "${call.name ?? ''}" ${why} by the gateway's policy`, { reason: decision.reason, tool: call.name }))
    }
    if (refusals.length > 0) {
      // A batch is refused whole: running part of it would surprise the client more.
      reply.code(200).type('application/json').send(messages.length === 1 ? refusals[0] : refusals)
      return true
    }
    request.toolCalls = { calls: tools, caller, startedAt: performance.now(), outcomes: new Map() }
    return false
  }

  const toolCalls: ToolCalls = {
    // Callback-style and synchronous: every proxied request passes here, and an async hook would
    // cost each one a promise even when the body is not about tools.
    inspect: route => function inspectToolCalls (request, reply, done) {
      let replied: boolean
      try {
        replied = examine(route, request, reply)
      } catch (err) {
        done(err as Error)
        return
      }
      if (!replied) done()
    },

    watches: request => request.toolCalls !== null,

    rewriteJson (route, request, body) {
      let parsed: unknown
      try {
        parsed = JSON.parse(body.toString('utf8'))
      } catch {
        return body
      }
      let changed = false
      const visit = (message: Record<string, unknown>): Record<string, unknown> => {
        const next = observe(route, request.toolCalls as ToolCallState, message)
        if (next !== undefined) changed = true
        return next ?? message
      }
      const result = Array.isArray(parsed) ? parsed.map(m => visit(m as Record<string, unknown>)) : visit(parsed as Record<string, unknown>)
      return changed ? Buffer.from(JSON.stringify(result)) : body
    },

    rewriteSse (route, request, stream) {
      const state = request.toolCalls as ToolCallState
      // pipeline: an upstream error or a client that goes away tears down both sides.
      return pipeline(stream, new SseMessages(message => observe(route, state, message)), () => {})
    },

    finish (route, request, reply) {
      const state = request.toolCalls
      if (state === null) return
      const ms = performance.now() - state.startedAt
      for (const call of state.calls) {
        if (call.method !== 'tools/call') continue
        const outcome = state.outcomes.get(call.id) ?? (reply.statusCode >= 400 ? `http_${reply.statusCode}` : reply.raw.writableFinished ? 'ok' : 'aborted')
        audit(route, request, call, outcome, ms)
      }
    }
  }

  /** Records a call's outcome; returns a filtered tools/list answer when the policy hides tools. */
  function observe (route: RouteConfig, state: ToolCallState, message: Record<string, unknown>): Record<string, unknown> | undefined {
    const call = state.calls.find(c => c.id === message.id)
    if (call === undefined) return undefined
    const result = message.result as { isError?: unknown, tools?: Array<{ name?: unknown }> } | undefined
    if (call.method === 'tools/call') {
      state.outcomes.set(call.id, message.error !== undefined || result?.isError === true ? 'error' : 'ok')
      return undefined
    }
    const policy = route.toolPolicy
    if (policy === undefined || !Array.isArray(result?.tools)) return undefined
    const tools = result.tools.filter(t => typeof t.name === 'string' && policy.visible(t.name, state.caller))
    return tools.length === result.tools.length ? undefined : { ...message, result: { ...result, tools } }
  }

  fastify.decorate('toolCalls', toolCalls)
  fastify.decorateRequest('toolCalls', null)
}

export default fp(toolCallsPlugin, { name: 'tool-calls', fastify: '5.x', dependencies: ['config', 'tokens', 'metrics'] })
