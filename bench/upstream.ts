import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

/**
 * The upstream every bench target fronts: a minimal JSON-RPC responder on node:http that
 * answers like an MCP server (JSON for POST /mcp, a session id on initialize) and, on
 * POST /sse, an SSE stream whose events leave at set delays so proxies can be timed against
 * them. Kept minimal so that the proxies, not the upstream, dominate what is measured.
 *
 * argv: <port> <first event delay ms> <events> <gap ms>; prints "ready" when listening.
 */
const [port, firstDelay, events, gap] = process.argv.slice(2).map(Number)
const SESSION = 'bench-session-0001'

function answerJson (req: IncomingMessage, res: ServerResponse, raw: string): void {
  let id: unknown = null
  let method = ''
  try {
    const msg = JSON.parse(raw) as { id?: unknown, method?: string }
    id = msg.id ?? null
    method = msg.method ?? ''
  } catch {
    res.writeHead(400, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}')
    return
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (method === 'initialize') headers['mcp-session-id'] = SESSION
  const result = method === 'initialize'
    ? { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'bench-upstream', version: '1' } }
    : { content: [{ type: 'text', text: '5' }] }
  res.writeHead(200, headers).end(JSON.stringify({ jsonrpc: '2.0', id, result }))
}

function stream (res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.flushHeaders()
  let sent = 0
  const next = (): void => {
    sent++
    res.write(`event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":${sent}}}\n\n`)
    if (sent === events) res.end()
    else timer = setTimeout(next, gap)
  }
  let timer = setTimeout(next, firstDelay)
  res.once('close', () => clearTimeout(timer))
}

createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405).end()
    return
  }
  if (req.url === '/sse') {
    req.resume()
    stream(res)
    return
  }
  let raw = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => { raw += chunk })
  req.once('end', () => answerJson(req, res, raw))
}).listen(port, '127.0.0.1', () => { console.log('ready') })
