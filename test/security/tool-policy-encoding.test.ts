import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import { buildGateway, mintToken } from '../helper.js'
import { startMcpUpstream, type McpUpstream } from '../fixtures/mcp-upstream.js'

/**
 * Issue 9 (High): per-tool policy bypassed by JSON escapes and encodings. Each request below is
 * what an attacker holding a valid token for the route sends by hand; the upstream is the MCP
 * SDK's own server transport, which counts the tools it really ran.
 */

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }
const CALL_ADD = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}'

interface Answer { status: number, json: any, text: string }

async function setup (t: Test, jsonResponse: boolean): Promise<{ upstream: McpUpstream, post: (body: string | Buffer, headers?: Record<string, string>, pattern?: string) => Promise<Answer>, logLines: string[] }> {
  const upstream = await startMcpUpstream({ jsonResponse })
  t.teardown(upstream.close)
  const logLines: string[] = []
  const gateway = await buildGateway(t, {
    listen: true,
    logLines,
    config: {
      proxies: [
        { pattern: '/calc/mcp', target_url: upstream.url, tools: { deny: ['add', '*_admin'] } },
        { pattern: '/audit/mcp', target_url: upstream.url, audit_arguments: true },
        { pattern: '/plain/mcp', target_url: upstream.url }
      ]
    }
  })
  const base = gateway.config.env.BASE_URL
  const sessions = new Map<string, Record<string, string>>()
  const open = async (pattern: string): Promise<Record<string, string>> => {
    const auth = { authorization: `Bearer ${mintToken(gateway, pattern, { sub: 'mallory', email: 'mallory@example.com' })}` }
    const init = await fetch(base + pattern, {
      method: 'POST',
      headers: { ...MCP_HEADERS, ...auth },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'attacker', version: '1' } } })
    })
    await init.text()
    const headers = { ...auth, 'mcp-session-id': init.headers.get('mcp-session-id') as string, 'mcp-protocol-version': '2025-06-18' }
    const ready = await fetch(base + pattern, { method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
    await ready.text()
    return headers
  }
  // Sessions first, so that every later upstream request counted is one of the attack's.
  for (const pattern of ['/calc/mcp', '/audit/mcp', '/plain/mcp']) sessions.set(pattern, await open(pattern))
  const post = async (body: string | Buffer, headers: Record<string, string> = {}, pattern = '/calc/mcp'): Promise<Answer> => {
    const session = sessions.get(pattern)
    const res = await fetch(base + pattern, { method: 'POST', headers: { ...MCP_HEADERS, ...session, ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) })
    const text = await res.text()
    // SSE answers: the JSON-RPC message is the data of the event that carries one.
    const data = res.headers.get('content-type')?.startsWith('text/event-stream') === true
      ? text.split('\n').filter(l => l.startsWith('data: ') && l.length > 6).map(l => l.slice(6)).pop() ?? ''
      : text
    let json: unknown
    try { json = JSON.parse(data) } catch { json = undefined }
    return { status: res.status, json, text }
  }
  return { upstream, post, logLines }
}

const utf16 = (text: string, order: 'le' | 'be', bom: boolean): Buffer => {
  const le = Buffer.from((bom ? '\ufeff' : '') + text, 'utf16le')
  return order === 'le' ? le : le.swap16()
}

t.test('escaped method and tool names are judged by what they mean, and a denied tool never runs', async t => {
  const { upstream, post } = await setup(t, true)
  const variants: Record<string, string> = {
    'method "tools\\/call"': CALL_ADD.replace('tools/call', 'tools\\/call'),
    'method "\\u0074ools/call"': CALL_ADD.replace('tools/call', '\\u0074ools/call'),
    'method "tools\\u002fcall"': CALL_ADD.replace('tools/call', 'tools\\u002fcall'),
    'name "\\u0061dd"': CALL_ADD.replace('"add"', '"\\u0061dd"'),
    'name "a\\u0064d"': CALL_ADD.replace('"add"', '"a\\u0064d"'),
    'both escaped, pretty-printed': JSON.stringify(JSON.parse(CALL_ADD), null, 2).replace('tools/call', 'tools\\/call').replace('"add"', '"\\u0061\\u0064\\u0064"')
  }
  for (const [what, body] of Object.entries(variants)) {
    const answer = await post(body)
    t.equal(answer.status, 200, `${what}: answered by the gateway`)
    t.match(answer.json, { id: 1, error: { code: -32001, message: 'Tool "add" is denied on this route by the gateway\'s policy', data: { reason: 'denied', tool: 'add' } } }, `${what}: refused as add`)
  }
  t.equal(upstream.toolRuns.add, undefined, 'add never ran upstream')

  // The same escapes on an allowed tool still reach it: strict, not broken.
  const allowed = await post(CALL_ADD.replace('tools/call', 'tools\\/call').replace('"add"', '"progress"').replace('{"a":1,"b":2}', '{"steps":1,"delayMs":0}'))
  t.equal(allowed.status, 200)
  t.match(allowed.json, { id: 1, result: { content: [{ text: 'done after 1 steps' }] } })
  t.equal(upstream.toolRuns.progress, 1)

  // Equal keys in different objects, and strings holding quotes, backslashes and braces, are fine.
  const nested = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'progress', arguments: { steps: 1, delayMs: 0, name: { name: 'x "}{" \\', steps: ['"', '\\"'] } } } })
  t.match((await post(nested)).json, { id: 2, result: { content: [{ text: 'done after 1 steps' }] } })
  t.equal(upstream.toolRuns.progress, 2)
})

t.test('bodies another parser could read differently are refused with -32700 and never forwarded', async t => {
  const { upstream, post } = await setup(t, true)
  const escapedCall = CALL_ADD.replace('tools/call', 'tools\\/call')
  const cases: Array<{ what: string, body: string | Buffer, headers?: Record<string, string>, code?: number, message: RegExp }> = [
    { what: 'UTF-8 byte order mark', body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(CALL_ADD)]), message: /byte order mark/ },
    { what: 'UTF-16LE with BOM', body: utf16(CALL_ADD, 'le', true), message: /not valid UTF-8/ },
    { what: 'UTF-16BE with BOM', body: utf16(CALL_ADD, 'be', true), message: /not valid UTF-8/ },
    { what: 'UTF-16LE without BOM', body: utf16(CALL_ADD, 'le', false), message: /not valid JSON/ },
    { what: 'UTF-16BE without BOM', body: utf16(CALL_ADD, 'be', false), message: /not valid JSON/ },
    { what: 'UTF-16 declared in Content-Type', body: utf16(CALL_ADD, 'le', false), headers: { 'content-type': 'application/json; charset=utf-16le' }, message: /charset "utf-16le"/ },
    { what: 'ASCII body declared as latin1', body: escapedCall, headers: { 'content-type': 'application/json; charset="ISO-8859-1"' }, message: /charset "iso-8859-1"/ },
    { what: 'invalid UTF-8 (lone 0xff)', body: Buffer.concat([Buffer.from(escapedCall.slice(0, -1)), Buffer.from(',"pad":"'), Buffer.from([0xff]), Buffer.from('"}')]), message: /not valid UTF-8/ },
    { what: 'overlong UTF-8 for "/"', body: Buffer.concat([Buffer.from(CALL_ADD.slice(0, CALL_ADD.indexOf('/'))), Buffer.from([0xc0, 0xaf]), Buffer.from(CALL_ADD.slice(CALL_ADD.indexOf('/') + 1))]), message: /not valid UTF-8/ },
    { what: 'UTF-8-encoded surrogate (CESU)', body: Buffer.concat([Buffer.from(escapedCall.slice(0, -1)), Buffer.from(',"pad":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), message: /not valid UTF-8/ },
    { what: 'NaN', body: escapedCall.replace('"a":1', '"a":NaN'), message: /not valid JSON/ },
    { what: 'trailing garbage', body: `${escapedCall}garbage`, message: /not valid JSON/ },
    { what: 'two messages back to back', body: escapedCall + escapedCall, message: /not valid JSON/ },
    { what: 'a comment', body: `/* hi */${escapedCall}`, message: /not valid JSON/ },
    { what: 'gzip-compressed body', body: gzipSync(escapedCall), headers: { 'content-encoding': 'gzip' }, message: /Content-Encoding/ },
    { what: 'empty POST', body: '', headers: { 'content-type': 'application/json' }, message: /not valid JSON/ },
    { what: 'a repeated method (first-wins parsers run tools/call)', body: CALL_ADD.replace('"method":"tools/call"', '"method":"tools/call","method":"ping"'), message: /key "method" appears twice/ },
    { what: 'a repeated, escaped tool name', body: CALL_ADD.replace('"name":"add"', '"name":"add","n\\u0061me":"progress"'), message: /key "name" appears twice/ },
    { what: 'a repeated id in a batch element', body: `[${CALL_ADD.replace('"id":1', '"id":1,"id":2')}]`, message: /key "id" appears twice/ },
    { what: 'method as an array', body: CALL_ADD.replace('"tools/call"', '["tools/call"]'), code: -32600, message: /method of the message must be a string/ },
    { what: 'tool name with a NUL', body: CALL_ADD.replace('"add"', '"add\\u0000"'), code: -32602, message: /params\.name/ },
    { what: 'tool name as an array', body: CALL_ADD.replace('"add"', '["add"]'), code: -32602, message: /params\.name/ },
    { what: 'batch element that is not an object', body: `[${escapedCall}, 1]`, code: -32600, message: /batch element 1/ }
  ]
  for (const c of cases) {
    const before = upstream.requests.length
    const answer = await post(c.body, c.headers)
    t.equal(answer.status, 400, `${c.what}: 400`)
    t.match(answer.json, { jsonrpc: '2.0', error: { code: c.code ?? -32700, message: c.message } }, `${c.what}: JSON-RPC error`)
    t.equal(upstream.requests.length, before, `${c.what}: nothing reached the upstream`)
  }
  t.equal(upstream.toolRuns.add, undefined, 'add never ran upstream')
})

t.test('a batch with a denied call is refused whole, every request answered, nothing run', async t => {
  const { upstream, post } = await setup(t, true)
  const progress = (id: number): object => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'progress', arguments: { steps: 1, delayMs: 0 } } })
  const before = upstream.requests.length
  const mixed = `[${JSON.stringify(progress(10))},${CALL_ADD.replace('"id":1', '"id":11').replace('tools/call', 'tools\\/call').replace('"add"', '"\\u0061dd"')},{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}]`
  const answer = await post(mixed)
  t.equal(answer.status, 200)
  t.same((answer.json as Array<{ id: number, error: { code: number, data: { reason: string } } }>).map(m => [m.id, m.error.code, m.error.data.reason]).sort(),
    [[10, -32001, 'batch_refused'], [11, -32001, 'denied']], 'the denied call and the allowed one both answered, the notification not')
  t.equal(upstream.requests.length, before, 'the batch never reached the upstream')
  t.equal(upstream.toolRuns.add, undefined)
  t.equal(upstream.toolRuns.progress, undefined, 'the allowed call of a refused batch did not run either')

  const honest = await post(JSON.stringify([progress(20), progress(21)]))
  t.equal(honest.status, 200)
  t.same((honest.json as Array<{ id: number }>).map(m => m.id).sort(), [20, 21], 'a batch of allowed calls runs')
  t.equal(upstream.toolRuns.progress, 2)
})

t.test('Mcp-Method and Mcp-Name must agree with the parsed body', async t => {
  const { upstream, post } = await setup(t, true)
  const progressCall = CALL_ADD.replace('"add"', '"progress"').replace('{"a":1,"b":2}', '{"steps":1,"delayMs":0}')
  const cases: Array<{ what: string, body: string, headers: Record<string, string>, message: RegExp }> = [
    { what: 'Mcp-Name names an allowed tool, escaped body calls another', body: progressCall.replace('"progress"', '"\\u0070rogress"').replace('"id":1', '"id":2'), headers: { 'mcp-method': 'tools/call', 'mcp-name': 'headers' }, message: /Mcp-Name "headers" does not match the body's "progress"/ },
    { what: 'Mcp-Name without Mcp-Method', body: progressCall, headers: { 'mcp-name': 'headers' }, message: /Mcp-Name "headers" does not match/ },
    { what: 'Mcp-Method ping, escaped tools/call', body: progressCall.replace('tools/call', 'tools\\/call'), headers: { 'mcp-method': 'ping' }, message: /Mcp-Method "ping" does not match the body's method "tools\/call"/ },
    { what: 'headers with a batch', body: `[${progressCall}]`, headers: { 'mcp-method': 'tools/call', 'mcp-name': 'progress' }, message: /exactly one JSON-RPC message/ }
  ]
  for (const c of cases) {
    const answer = await post(c.body, c.headers)
    t.equal(answer.status, 400, `${c.what}: 400`)
    t.match(answer.json, { error: { code: -32600, message: c.message } }, c.what)
  }
  t.equal(upstream.toolRuns.progress, undefined, 'no mismatched request ran')
  const agreeing = await post(progressCall, { 'mcp-method': 'tools/call', 'mcp-name': 'progress' })
  t.match(agreeing.json, { result: { content: [{ text: 'done after 1 steps' }] } }, 'headers that agree pass')
})

for (const jsonResponse of [true, false]) {
  t.test(`tools/list is filtered under every request variant (${jsonResponse ? 'JSON' : 'SSE'} answers)`, async t => {
    const { post } = await setup(t, jsonResponse)
    const list = '{"jsonrpc":"2.0","id":"l","method":"tools/list"}'
    const variants: Record<string, string> = {
      plain: list,
      'tools\\/list': list.replace('tools/list', 'tools\\/list'),
      '\\u0074ools/list': list.replace('tools/list', '\\u0074ools/list'),
      'all escaped': list.replace('"tools/list"', `"${[...'tools/list'].map(ch => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`),
      'with params and whitespace': list.replace('"tools/list"', ' "tools\\/list" , "params" : { } '),
      'numeric id': list.replace('"l"', '7')
    }
    for (const [what, body] of Object.entries(variants)) {
      const answer = await post(body)
      t.equal(answer.status, 200, `${what}: 200`)
      const tools = (answer.json as { result?: { tools?: Array<{ name: string }> } })?.result?.tools?.map(x => x.name).sort()
      t.same(tools, ['headers', 'progress'], `${what}: add is not listed`)
    }
    if (jsonResponse) {
      // The SDK answers a batch in one JSON array.
      const batch = await post(`[${list.replace('tools/list', 'tools\\/list')},${list.replace('"l"', '"m"').replace('tools/list', '\\u0074ools/list')}]`)
      t.same((batch.json as Array<{ result: { tools: Array<{ name: string }> } }>).map(m => m.result.tools.map(x => x.name).sort()), [['headers', 'progress'], ['headers', 'progress']], 'batch: each answer filtered')
    }
  })
}

t.test('an audited route records escaped tool calls', async t => {
  const { upstream, post, logLines } = await setup(t, true)
  const answer = await post(CALL_ADD.replace('tools/call', 'tools\\/call').replace('"add"', '"\\u0061dd"'), {}, '/audit/mcp')
  t.match(answer.json, { result: { content: [{ text: '3' }] } })
  t.equal(upstream.toolRuns.add, 1)
  const audits = logLines.map(l => JSON.parse(l)).filter(l => l.audit !== undefined).map(l => l.audit)
  t.match(audits, [{ route: '/audit/mcp', tool: 'add', outcome: 'ok', arguments: { a: 1, b: 2 }, sub: 'mallory' }], 'the call left its audit record')
  const bom = await post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(CALL_ADD)]), {}, '/audit/mcp')
  t.equal(bom.status, 400, 'an unreadable body is not forwarded past the audit either')
  t.equal(upstream.toolRuns.add, 1)

  // A plain route reads leniently (and pays nothing for bodies without tools), but escapes and
  // a byte order mark do not hide a call from its audit record.
  await post(CALL_ADD.replace('tools/call', 'tools\\/call'), {}, '/plain/mcp')
  await post(CALL_ADD.replace('tools/call', '\\u0074ools/call').replace('"id":1', '"id":2'), {}, '/plain/mcp')
  await post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(CALL_ADD.replace('"id":1', '"id":3'))]), {}, '/plain/mcp')
  t.equal(upstream.toolRuns.add, 4, 'the plain route forwarded all three')
  const plain = logLines.map(l => JSON.parse(l)).filter(l => l.audit?.route === '/plain/mcp').map(l => l.audit)
  t.match(plain, [{ tool: 'add', outcome: 'ok' }, { tool: 'add', outcome: 'ok' }, { tool: 'add', outcome: 'ok' }], 'each left its audit record')
})

t.test('tool lists are filtered whatever id they answer and on GET streams', async t => {
  // An upstream that reads the request id its own way (and a stream that replays an earlier
  // answer, as a resumed GET with Last-Event-ID does): lists it sends match no request id.
  const list = (id: unknown): string => JSON.stringify({ jsonrpc: '2.0', id, result: { tools: [{ name: 'add' }, { name: 'progress' }] } })
  const upstream = createServer((req, res) => {
    req.resume()
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`id: 1\nevent: message\ndata: ${list('earlier')}\n\n`)
      return
    }
    // Compressed when the request allows it, as compression middleware does.
    const gzip = /gzip/.test(req.headers['accept-encoding'] ?? '')
    res.writeHead(200, { 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) }).end(gzip ? gzipSync(list(99)) : list(99))
  })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.close() })
  const gateway = await buildGateway(t, {
    config: { proxies: [{ pattern: '/calc/mcp', target_url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`, tools: { deny: ['add'] } }] },
    listen: true
  })
  const url = `${gateway.config.env.BASE_URL}/calc/mcp`
  const headers = { ...MCP_HEADERS, authorization: `Bearer ${mintToken(gateway, '/calc/mcp', { sub: 'mallory' })}` }
  const names = (m: { result: { tools: Array<{ name: string }> } }): string[] => m.result.tools.map(x => x.name)

  const posted = await fetch(url, { method: 'POST', headers, body: '{"jsonrpc":"2.0","id":1,"method":"tools\\/list"}' })
  t.same(names(await posted.json()), ['progress'], 'a list answering another id is filtered')
  const compressed = await fetch(url, { method: 'POST', headers: { ...headers, 'accept-encoding': 'gzip' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' })
  t.same(names(await compressed.json()), ['progress'], 'a client asking for gzip still gets a filtered list')
  const replayed = await fetch(url, { headers: { ...headers, 'last-event-id': '0' } })
  const data = (await replayed.text()).split('\n').find(l => l.startsWith('data: ')) as string
  t.same(names(JSON.parse(data.slice(6))), ['progress'], 'a list replayed on a GET stream is filtered')
})
