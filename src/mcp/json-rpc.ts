/** What the gateway needs to know of one JSON-RPC request in an MCP POST body. */
export interface McpCall {
  id: string | number | null
  method: string
  /** params.name (tools, prompts) or params.uri (resources). */
  name?: string
  arguments?: unknown
}

/**
 * Reads the JSON-RPC requests of a POST body (one message, or a 2025-03-26 batch). With
 * `everything` false only tools/call and tools/list are returned, and bodies that do not
 * mention "tools/" are not parsed at all, so ping, resources and notifications cost nothing.
 * Unparseable bodies give [] and go upstream, whose parse error the client then sees.
 */
export function readMessages (body: string, everything = false): McpCall[] {
  if (!everything && !body.includes('tools/')) return []
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return []
  }
  const messages = Array.isArray(parsed) ? parsed : [parsed]
  const calls: McpCall[] = []
  for (const message of messages) {
    if (message === null || typeof message !== 'object') continue
    const { id, method, params } = message as { id?: unknown, method?: unknown, params?: { name?: unknown, uri?: unknown, arguments?: unknown } }
    if (typeof method !== 'string') continue
    if (!everything && method !== 'tools/call' && method !== 'tools/list') continue
    const call: McpCall = { id: typeof id === 'string' || typeof id === 'number' ? id : null, method }
    const name = params?.name ?? params?.uri
    if (typeof name === 'string') call.name = name
    if (method === 'tools/call') call.arguments = params?.arguments
    calls.push(call)
  }
  return calls
}

export function jsonRpcError (id: string | number | null, code: number, message: string, data?: unknown): object {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } }
}

/** Gateway policy refusals (JSON-RPC implementation-defined server error range). */
export const POLICY_DENIED = -32001
export const INVALID_REQUEST = -32600
