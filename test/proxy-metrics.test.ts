import t from 'tap'
import { createServer } from 'node:http'
import { buildGateway, mintToken } from './helper.js'

/** An upstream that answers every JSON-RPC call with a result, chunked, as many servers do. */
async function answeringUpstream (t: { teardown: (fn: () => void) => void }): Promise<string> {
  const server = createServer((req, res) => {
    req.resume().once('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{"content":[]}}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`
}

const call = (name: string): string => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } })

t.test('proxied requests feed the route histogram the dashboards read, per route as written, method and status', async t => {
  const gateway = await buildGateway(t, { config: { proxies: [{ pattern: '/calc/mcp', target_url: await answeringUpstream(t) }] } })
  const headers = { authorization: `Bearer ${mintToken(gateway, '/calc/mcp')}`, 'content-type': 'application/json' }
  for (const url of ['/calc/mcp', '/calc/mcp', '/calc/mcp/']) {
    t.equal((await gateway.inject({ method: 'POST', url, headers, payload: call('add') })).statusCode, 200)
  }
  t.equal((await gateway.inject({ method: 'POST', url: '/calc/mcp', payload: call('add') })).statusCode, 401)
  t.equal((await gateway.inject('/.well-known/oauth-protected-resource/calc/mcp')).statusCode, 200)
  const metrics = (await gateway.inject('/metrics')).body
  t.match(metrics, /http_request_duration_seconds_count\{method="POST",route="\/calc\/mcp",status_code="200"\} 2\n/)
  t.match(metrics, /http_request_duration_seconds_count\{method="POST",route="\/calc\/mcp\/",status_code="200"\} 1\n/)
  t.match(metrics, /http_request_duration_seconds_count\{method="POST",route="\/calc\/mcp",status_code="401"\} 1\n/, 'refusals too')
  const sum = /http_request_duration_seconds_sum\{method="POST",route="\/calc\/mcp",status_code="200"\} ([\d.e-]+)\n/.exec(metrics)
  t.ok(sum !== null && Number(sum[1]) > 0, 'with the time they took')
  t.match(metrics, /http_request_duration_seconds_count\{method="GET",route="\/.well-known\/oauth-protected-resource\/calc\/mcp",status_code="200"\} 1\n/, 'the other endpoints as before')
  t.match(metrics, /mcpgw_proxied_requests_total\{route="\/calc\/mcp",status="200"\} 3\n/)
})

t.test('tool names past 100 per route share the label "other", so clients cannot grow the metrics without bound', async t => {
  const gateway = await buildGateway(t, { config: { proxies: [{ pattern: '/calc/mcp', target_url: await answeringUpstream(t) }] } })
  const headers = { authorization: `Bearer ${mintToken(gateway, '/calc/mcp')}`, 'content-type': 'application/json' }
  for (let i = 0; i < 105; i++) await gateway.inject({ method: 'POST', url: '/calc/mcp', headers, payload: call(`tool_${i}`) })
  await gateway.inject({ method: 'POST', url: '/calc/mcp', headers, payload: call('tool_7') })
  const metrics = (await gateway.inject('/metrics')).body
  const labels = [...metrics.matchAll(/mcpgw_tool_calls_total\{route="\/calc\/mcp",tool="([^"]+)",outcome="ok"\} (\d+)/g)]
  t.equal(labels.length, 101, '100 tools and "other"')
  t.same(labels.find(([, tool]) => tool === 'other')?.[2], '5')
  t.same(labels.find(([, tool]) => tool === 'tool_7')?.[2], '2', 'a known tool keeps its own label')
  t.notOk(labels.some(([, tool]) => tool === 'tool_100'))
  t.match(metrics, /mcpgw_tool_call_duration_seconds_count\{route="\/calc\/mcp",tool="other"\} 5\n/)
})
