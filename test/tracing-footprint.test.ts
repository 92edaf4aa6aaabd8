import t from 'tap'
import { register } from 'node:module'
import { MessageChannel } from 'node:worker_threads'

/*
 * A gateway that does not trace must not carry OpenTelemetry's SDK and exporter (their code and
 * what it allocates: ~3 MB of a running gateway's RSS). This file imports nothing of the gateway
 * statically: a resolve hook registered first reports every module the process loads after it.
 */
const { port1, port2 } = new MessageChannel()
const resolved: string[] = []
port1.on('message', (url: string) => resolved.push(url))
port1.unref()
const hook = `
let port
export function initialize (data) { port = data.port }
export async function resolve (specifier, context, next) {
  const result = await next(specifier, context)
  port.postMessage(result.url)
  return result
}`
register(`data:text/javascript,${encodeURIComponent(hook)}`, { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] })

/** Waits until the hook's reports have caught up with this point (the port keeps their order). */
async function settled (): Promise<void> {
  const marker = `data:text/javascript,export default ${Date.now()}`
  await import(marker)
  while (!resolved.includes(marker)) await new Promise(resolve => setTimeout(resolve, 5))
}

const { buildGateway, mintToken } = await import('./helper.js')
const { startMcpUpstream } = await import('./fixtures/mcp-upstream.js')
const { textOf } = await import('./fixtures/authorization.js')
const { Client } = await import('@modelcontextprotocol/sdk/client/index.js')
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js')
const otel = (): string[] => resolved.filter(url => url.includes('/@opentelemetry/'))

t.test('tracing off: a proxied call is served and OpenTelemetry is never loaded', async t => {
  const upstream = await startMcpUpstream()
  t.teardown(upstream.close)
  const gateway = await buildGateway(t, { listen: true, config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] } })
  t.equal(gateway.tracing, null)
  const client = new Client({ name: 'footprint', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gateway.config.env.BASE_URL}/calc/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${mintToken(gateway, '/calc/mcp')}` } }
  }))
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })), '5')
  await client.close()
  await settled()
  t.ok(resolved.some(url => url.endsWith('/src/app.ts')), 'the hook saw the gateway load')
  t.same(otel(), [], 'no @opentelemetry module was loaded')
})

t.test('tracing on: the same gateway loads OpenTelemetry when OTEL_* ask for it', async t => {
  const upstream = await startMcpUpstream()
  t.teardown(upstream.close)
  const gateway = await buildGateway(t, {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/v1/traces' },
    config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] }
  })
  t.not(gateway.tracing, null)
  await settled()
  t.ok(otel().length > 0, 'OpenTelemetry was loaded')
})
