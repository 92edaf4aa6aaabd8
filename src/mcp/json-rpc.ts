import { duplicateKey } from './duplicate-keys.js'

/** What the gateway needs to know of one JSON-RPC request in an MCP POST body. */
export interface McpCall {
  id: string | number | null
  /** No `id` member: a notification, which gets no answer. */
  notification: boolean
  method: string
  /** params.name (tools, prompts) or params.uri (resources). */
  name?: string
  arguments?: unknown
}

/** A body the gateway refuses to read, with the JSON-RPC error it answers (HTTP 400). */
export interface Unreadable { code: number, message: string, id: string | number | null }

/** `batch`: the body is a JSON array, however many elements it has. */
export type ReadResult = { messages: McpCall[], batch: boolean } | { unreadable: Unreadable }

export const PARSE_ERROR = -32700
export const INVALID_REQUEST = -32600
export const INVALID_PARAMS = -32602
/** Gateway policy refusals (JSON-RPC implementation-defined server error range). */
export const POLICY_DENIED = -32001

/** Control characters and lone surrogates: C upstreams cut names at NUL, others replace or drop. */
const UNCLEAN = /[\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/ // eslint-disable-line no-control-regex

function idOf (id: unknown): string | number | null {
  return typeof id === 'string' || typeof id === 'number' ? id : null
}

function callOf (message: { id?: unknown, method: string, params?: { name?: unknown, uri?: unknown, arguments?: unknown } }): McpCall {
  const call: McpCall = { id: idOf(message.id), notification: !('id' in message), method: message.method }
  const name = message.params?.name ?? message.params?.uri
  if (typeof name === 'string') call.name = name
  if (message.method === 'tools/call') call.arguments = message.params?.arguments
  return call
}

/**
 * Reads the JSON-RPC requests of a POST body (one message, or a 2025-03-26 batch) on a route
 * without tool rules. With `everything` false only tools/call and tools/list are returned, and
 * bodies that do not mention "tools/" (nor hold an escape that could spell it) are not parsed
 * at all, so ping, resources and notifications cost nothing. Unparseable bodies give [] and go upstream, whose parse error the
 * client then sees. Routes with tool rules use `parseMessages`.
 */
export function readMessages (body: string, everything = false): McpCall[] {
  // "tools/" spelt with escapes needs \/ or \u: such bodies are parsed too, for the audit record.
  if (!everything && !body.includes('tools/') && !body.includes('\\/') && !body.includes('\\u')) return []
  let parsed: unknown
  try {
    // A byte order mark, which the SDK's transport drops, must not hide a call from the audit.
    parsed = JSON.parse(body.charCodeAt(0) === 0xfeff ? body.slice(1) : body)
  } catch {
    return []
  }
  const messages = Array.isArray(parsed) ? parsed : [parsed]
  const calls: McpCall[] = []
  for (const message of messages) {
    if (message === null || typeof message !== 'object') continue
    const { method } = message as { method?: unknown }
    if (typeof method !== 'string') continue
    if (!everything && method !== 'tools/call' && method !== 'tools/list') continue
    calls.push(callOf(message as { method: string }))
  }
  return calls
}

/**
 * Reads every message of a body for a route with tool rules, where a decision is only as good
 * as the agreement between what the gateway reads and what the upstream runs: the parsed value
 * decides (escapes are already resolved), and whatever a lenient upstream could read another
 * way is refused: JSON that does not parse, a batch element that is not an object, a `method`
 * that is not a clean string (a JavaScript upstream indexing a handler table with ["tools/call"]
 * finds tools/call), a tools/call without a clean string `params.name`.
 */
export function parseMessages (text: string): ReadResult {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return { unreadable: { code: PARSE_ERROR, message: 'Parse error: the body is not valid JSON', id: null } }
  }
  const repeated = duplicateKey(text)
  if (repeated !== undefined) {
    return { unreadable: { code: PARSE_ERROR, message: `Parse error: the key ${JSON.stringify(repeated)} appears twice in one object`, id: null } }
  }
  const batch = Array.isArray(parsed)
  const elements: unknown[] = batch ? parsed as unknown[] : [parsed]
  const calls: McpCall[] = []
  for (const [i, message] of elements.entries()) {
    const where = batch ? `batch element ${i}` : 'the message'
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      return { unreadable: { code: INVALID_REQUEST, message: `Invalid Request: ${where} is not a JSON-RPC object`, id: null } }
    }
    const { id, method, params } = message as { id?: unknown, method?: unknown, params?: unknown }
    // A response to a server request (sampling, elicitation) has no method: nothing to decide.
    if (!('method' in message)) continue
    if (typeof method !== 'string' || UNCLEAN.test(method)) {
      return { unreadable: { code: INVALID_REQUEST, message: `Invalid Request: the method of ${where} must be a string without control characters`, id: idOf(id) } }
    }
    if (params !== undefined && (params === null || typeof params !== 'object')) {
      return { unreadable: { code: INVALID_PARAMS, message: `Invalid params: the params of ${where} must be an object or an array`, id: idOf(id) } }
    }
    if (method === 'tools/call') {
      const name = (params as { name?: unknown } | undefined)?.name
      if (Array.isArray(params) || typeof name !== 'string' || UNCLEAN.test(name)) {
        return { unreadable: { code: INVALID_PARAMS, message: `Invalid params: tools/call in ${where} needs params.name, a string without control characters`, id: idOf(id) } }
      }
    }
    calls.push(callOf(message as { method: string }))
  }
  return { messages: calls, batch }
}

/**
 * Hands each object of a parsed answer (one message or a batch) to `visit`; the whole answer
 * rewritten when `visit` replaced any of them, undefined when nothing changed.
 */
export function rewriteMessages (parsed: unknown, visit: (message: Record<string, unknown>) => Record<string, unknown> | undefined): unknown {
  let changed = false
  const one = (message: unknown): unknown => {
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return message
    const next = visit(message as Record<string, unknown>)
    if (next !== undefined) changed = true
    return next ?? message
  }
  const result = Array.isArray(parsed) ? parsed.map(one) : one(parsed)
  return changed ? result : undefined
}

export function jsonRpcError (id: string | number | null, code: number, message: string, data?: unknown): object {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } }
}
