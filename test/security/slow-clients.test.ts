// Slowloris: a client that trickles its headers or body a byte at a time, or connects and says
// nothing, must lose the connection once the configured timeout passes. Event streams that have
// started must keep flowing however long and quiet they are.
import t from 'tap'
import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildGateway, mintToken } from '../helper.js'
import { startMcpUpstream, type McpUpstream } from '../fixtures/mcp-upstream.js'

const TIMEOUTS = { HEADERS_TIMEOUT_MS: '800', REQUEST_TIMEOUT_MS: '1500', CONNECTION_TIMEOUT_MS: '1200', UPSTREAM_TIMEOUT_MS: '1000', KEEP_ALIVE_TIMEOUT_MS: '500' }
/** Node checks these timeouts periodically (here every 800 ms), on a loaded machine a little later. */
const LATE_MS = 2000
const ACCEPT = 'application/json, text/event-stream'

interface Outcome { closedAfterMs: number, response: string }

/**
 * Opens a raw connection, writes `start`, then one byte of `trickle` every `everyMs` until the
 * gateway answers or closes (or `giveUpMs` passes, when the test would otherwise hang).
 */
async function slowClient (port: number, start: string, trickle: string, everyMs: number, giveUpMs = 8000): Promise<Outcome> {
  return await new Promise((resolve, reject) => {
    const began = Date.now()
    const socket = connect(port, '127.0.0.1')
    let response = ''
    let sent = 0
    const timer = setInterval(() => {
      if (sent < trickle.length && !socket.destroyed) socket.write(trickle[sent++])
    }, everyMs)
    const stop = setTimeout(() => { socket.destroy(new Error(`still open after ${giveUpMs} ms`)) }, giveUpMs)
    socket.on('connect', () => { if (start !== '') socket.write(start) })
    socket.on('data', chunk => { response += chunk.toString() })
    socket.on('error', err => { clearInterval(timer); clearTimeout(stop); reject(err) })
    socket.on('close', () => { clearInterval(timer); clearTimeout(stop); resolve({ closedAfterMs: Date.now() - began, response }) })
  })
}

let upstream: McpUpstream
let app: FastifyInstance
let port: number
t.before(async () => { upstream = await startMcpUpstream() })
t.teardown(async () => await upstream.close())
t.beforeEach(async t => {
  app = await buildGateway(t, { listen: true, env: TIMEOUTS, config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] } })
  port = Number(new URL(app.config.env.BASE_URL).port)
})

t.test('headers trickled a byte at a time are cut at HEADERS_TIMEOUT_MS', async t => {
  const out = await slowClient(port, 'POST /oauth/register HTTP/1.1\r\nHost: gw\r\n', 'X-Slow: ' + 'a'.repeat(200), 100)
  t.ok(out.closedAfterMs >= 700 && out.closedAfterMs <= 800 + LATE_MS, `closed after ${out.closedAfterMs} ms`)
  t.match(out.response, /^(HTTP\/1\.1 408|$)/, '408 Request Timeout, or just closed')
})

t.test('a connection that never sends a byte is closed at HEADERS_TIMEOUT_MS', async t => {
  const out = await slowClient(port, '', '', 1000)
  t.ok(out.closedAfterMs <= 800 + LATE_MS, `closed after ${out.closedAfterMs} ms`)
})

t.test('a body trickled a byte at a time is cut at REQUEST_TIMEOUT_MS', async t => {
  const body = JSON.stringify({ redirect_uris: ['http://127.0.0.1:7777/cb'], client_name: 'x'.repeat(300) })
  const head = `POST /oauth/register HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
  // Each byte comes well within CONNECTION_TIMEOUT_MS, so only the whole-request limit can end it.
  const out = await slowClient(port, head, body, 100)
  t.ok(out.closedAfterMs >= 1400 && out.closedAfterMs <= 1500 + LATE_MS, `closed after ${out.closedAfterMs} ms`)
  t.match(out.response, /^(HTTP\/1\.1 408|$)/, '408 Request Timeout, or just closed')
  t.notMatch(out.response, /201/, 'the registration never happened')
})

t.test('an idle kept-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS', async t => {
  const out = await slowClient(port, 'GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n', '', 1000)
  t.match(out.response, /^HTTP\/1\.1 200/, 'the request was served')
  // Node adds a second to the announced keep-alive before it closes.
  t.ok(out.closedAfterMs <= 500 + 1000 + LATE_MS, `closed after ${out.closedAfterMs} ms`)
})

t.test('an event stream longer than every timeout, with quiet gaps longer than the idle timeout, keeps flowing', async t => {
  const token = mintToken(app, '/calc/mcp')
  const base = app.config.env.BASE_URL
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT }
  const init = await fetch(`${base}/calc/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) })
  await init.text()
  const session = init.headers.get('mcp-session-id') ?? ''
  await (await fetch(`${base}/calc/mcp`, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text()

  // The standalone GET stream: nothing on it for longer than CONNECTION_TIMEOUT_MS.
  const get = await fetch(`${base}/calc/mcp`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': session } })
  t.equal(get.status, 200)
  const getReader = get.body!.getReader()
  const getRead = getReader.read().then(r => (r.done ? 'ended' : 'data'), () => 'cut')

  // 3 events 1.6 s apart: 4.8 s in all, each gap longer than the idle timeout.
  const started = Date.now()
  const res = await fetch(`${base}/calc/mcp`, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'progress', arguments: { steps: 3, delayMs: 1600 } } }) })
  const text = await res.text()
  t.match(text, /step 1[\s\S]*step 2[\s\S]*step 3[\s\S]*done after 3 steps/, 'every event and the result arrived')
  t.ok(Date.now() - started >= 4800, 'the stream lasted longer than REQUEST_TIMEOUT_MS and CONNECTION_TIMEOUT_MS')

  const state = await Promise.race([getRead, new Promise(resolve => setTimeout(() => resolve('open'), 100))])
  t.equal(state, 'open', 'the quiet GET stream is still open')
  await getReader.cancel()
})
