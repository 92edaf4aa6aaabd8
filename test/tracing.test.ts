import t from 'tap'
import { createServer } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { buildApp } from '../src/app.js'
import { emailHash } from '../src/tracing/gateway-tracing.js'
import { buildGateway, mintToken } from './helper.js'
import { startMcpUpstream } from './fixtures/mcp-upstream.js'
import { startOtlpReceiver, type ReceivedSpan } from './fixtures/otlp-receiver.js'
import { TestBrowser } from './fixtures/browser.js'
import { TestOAuthClient } from './fixtures/oauth-client.js'
import { REDIRECT, mcpClient, startAuthorizationServer, startLogin, textOf } from './fixtures/authorization.js'

const SERVER = 2
const CLIENT = 3

t.test('one tool call is one trace: client traceparent → gateway span → upstream span → the MCP server', async t => {
  const receiver = await startOtlpReceiver()
  t.teardown(receiver.close)
  const upstream = await startMcpUpstream()
  t.teardown(upstream.close)
  const gateway = await buildGateway(t, {
    listen: true,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SERVICE_NAME: 'gw-under-test' },
    // A tool policy makes the route read bodies: the span then names the method and the tool.
    config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url, tools: { allow: ['add'] } }] }
  })
  const email = 'ana@example.com'
  const token = mintToken(gateway, '/calc/mcp', { sub: 'ana', email })
  const traceId = randomBytes(16).toString('hex')
  const clientSpanId = randomBytes(8).toString('hex')
  const client = new Client({ name: 'trace-test', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gateway.config.env.BASE_URL}/calc/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${clientSpanId}-01` } }
  }))
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })), '5')
  await client.close()
  await gateway.close() // flushes the batch

  const call = receiver.spans.find(s => s.kind === SERVER && s.attributes['gen_ai.tool.name'] === 'add') as ReceivedSpan
  t.ok(call, 'a server span names the tool')
  t.equal(call.service, 'gw-under-test', 'OTEL_SERVICE_NAME')
  t.equal(call.traceId, traceId, 'the client\'s trace is continued')
  t.equal(call.parentSpanId, clientSpanId, 'the client\'s span is the parent')
  t.equal(call.name, 'POST /calc/mcp')
  t.match(call.attributes, {
    'http.route': '/calc/mcp',
    'http.request.method': 'POST',
    'http.response.status_code': 200,
    'mcp.method.name': 'tools/call',
    'mcpgw.client_id': 'test-client',
    'mcpgw.user.email_sha256': emailHash(email)
  })
  t.type(call.attributes['mcpgw.upstream.duration_ms'], 'number', 'upstream time')

  const hop = receiver.spans.find(s => s.kind === CLIENT && s.parentSpanId === call.spanId) as ReceivedSpan
  t.ok(hop, 'the upstream call is a child span')
  t.equal(hop.traceId, traceId)
  t.equal(hop.attributes['http.response.status_code'], 200)
  t.equal(hop.attributes['server.address'], '127.0.0.1')

  const received = upstream.requests.find(r => r.body?.includes('"tools/call"'))
  t.equal(received?.headers.traceparent, `00-${traceId}-${hop.spanId}-01`, 'the MCP server got the upstream span as its parent')

  const exported = receiver.bodies.join('\n')
  t.notOk(exported.includes(token), 'no token is exported')
  t.notOk(exported.includes(token.split('.')[2]), 'not even a token\'s signature')
  t.notOk(exported.includes(email), 'no email in clear')
  t.notOk(/authorization|bearer/i.test(exported), 'no credential header')
})

t.test('a gateway without a traceparent starts the trace; probes are not traced', async t => {
  const receiver = await startOtlpReceiver()
  t.teardown(receiver.close)
  const upstream = await startMcpUpstream({ jsonResponse: true })
  t.teardown(upstream.close)
  const gateway = await buildGateway(t, {
    listen: true,
    env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.endpoint}/v1/traces` },
    config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] }
  })
  const base = gateway.config.env.BASE_URL
  const res = await fetch(`${base}/calc/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${mintToken(gateway, '/calc/mcp')}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
  })
  t.equal(res.status, 200)
  t.equal((await fetch(`${base}/healthz`)).status, 200)
  t.equal((await fetch(`${base}/calc/mcp`, { method: 'POST', body: '{}' })).status, 401)
  await gateway.close()

  const served = receiver.spans.filter(s => s.kind === SERVER)
  t.same(served.map(s => [s.name, s.attributes['http.response.status_code']]).sort(), [['POST /calc/mcp', 200], ['POST /calc/mcp', 401]])
  t.equal(served[0].service, 'mcp-gateway', 'the default service name')
  t.ok(served.every(s => s.parentSpanId === ''), 'root spans')
  t.equal(served.find(s => s.attributes['http.response.status_code'] === 200)?.attributes['mcp.method.name'], undefined, 'a route without tool rules does not read bodies for the span')
  const sent = upstream.requests[0].headers.traceparent as string
  t.match(sent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  t.equal(sent.slice(3, 35), served[0].traceId, 'the upstream joins the gateway\'s trace')
})

t.test('a login is traced: the OAuth endpoints, the metadata document fetch and the provider exchange', async t => {
  const receiver = await startOtlpReceiver()
  t.teardown(receiver.close)
  const upstream = await startMcpUpstream()
  t.teardown(upstream.close)
  const documents = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ client_id: clientId, client_name: 'Traced client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' }))
  })
  await new Promise<void>(resolve => documents.listen(0, '127.0.0.1', resolve))
  t.teardown(() => documents.close())
  const clientId = `http://127.0.0.1:${(documents.address() as AddressInfo).port}/client.json`

  const { base, gateway } = await startAuthorizationServer(t, {
    config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] },
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint }
  })
  const provider = new TestOAuthClient(REDIRECT, { clientId })
  const transport = await startLogin(`${base}/calc/mcp`, provider)
  const back = await new TestBrowser().authorize((provider.authorizationUrl as URL).href, REDIRECT)
  await transport.finishAuth(back.searchParams.get('code') as string)
  const client = await mcpClient(t, `${base}/calc/mcp`, provider)
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), '2')
  await client.close()
  await gateway.close()

  const byId = new Map(receiver.spans.map(s => [s.spanId, s]))
  const parentOf = (s: ReceivedSpan | undefined): ReceivedSpan | undefined => s === undefined ? undefined : byId.get(s.parentSpanId)
  const fetchSpan = receiver.spans.find(s => s.name === 'cimd fetch')
  t.equal(fetchSpan?.kind, CLIENT)
  t.equal(fetchSpan?.attributes['mcpgw.client_id'], clientId)
  t.equal(parentOf(fetchSpan)?.name, 'GET /oauth/authorize', 'the document is fetched for the authorization request')
  const exchange = receiver.spans.find(s => s.name === 'idp login exchange')
  t.equal(exchange?.attributes['mcpgw.idp'], 'oidc')
  t.match(parentOf(exchange)?.name, /^GET \/oauth\/.*callback/, 'the exchange belongs to the provider\'s callback')
  const token = receiver.spans.find(s => s.name === 'POST /oauth/token')
  t.equal(token?.attributes['mcpgw.client_id'], clientId, 'the token endpoint span names the client')
  t.equal(token?.attributes['http.response.status_code'], 200)
  const exported = receiver.bodies.join('\n')
  const tokens = provider.tokens()
  t.notOk(exported.includes(tokens?.access_token as string) || exported.includes(tokens?.refresh_token as string), 'no token is exported')
  t.notOk(exported.includes(back.searchParams.get('code') as string), 'no authorization code is exported')
})

t.test('tracing stays off without an endpoint, and bad settings stop start-up', async t => {
  const receiver = await startOtlpReceiver()
  t.teardown(receiver.close)
  const off = await buildGateway(t, { env: { OTEL_SERVICE_NAME: 'named-only', OTEL_TRACES_SAMPLER: 'always_on' } })
  t.equal(off.tracing, null, 'naming the service does not turn tracing on')
  const disabled = await buildGateway(t, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SDK_DISABLED: 'true' } })
  t.equal(disabled.tracing, null, 'OTEL_SDK_DISABLED wins')
  const never = await buildGateway(t, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_TRACES_SAMPLER: 'always_off' } })
  t.match(String((await never.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'x' } })).statusCode), /^4/, 'a refused token request')
  await never.close()
  t.same(receiver.spans, [], 'always_off exports nothing')

  for (const [env, message] of [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, /OTEL_EXPORTER_OTLP_ENDPOINT/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, /OTEL_TRACES_SAMPLER_ARG/],
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, /OTEL_TRACES_SAMPLER/],
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, /OTEL_TRACES_EXPORTER/]
  ] as const) {
    await t.rejects(buildApp({ env: { KEYS_FILE: '', ...env }, configFile: { proxies: [] }, logger: false }), { name: 'ConfigError', message })
  }
})
