import t from 'tap'
import { createServer } from 'node:net'
import { buildApp } from '../src/app.js'
import { buildGateway, freePort } from './helper.js'
import { startMcpUpstream } from './fixtures/mcp-upstream.js'

t.test('with METRICS_PORT, /metrics is served there only and the main port answers 404', async t => {
  const upstream = await startMcpUpstream({ jsonResponse: true })
  t.teardown(upstream.close)
  const metricsPort = await freePort()
  const gateway = await buildGateway(t, {
    listen: true,
    env: { METRICS_PORT: String(metricsPort) },
    config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] }
  })
  const base = gateway.config.env.BASE_URL
  const scrapeUrl = `http://127.0.0.1:${metricsPort}/metrics`
  const refused = await fetch(`${base}/calc/mcp`, { method: 'POST', body: '{}' })
  t.equal(refused.status, 401)

  const publicScrape = await fetch(`${base}/metrics`)
  t.equal(publicScrape.status, 404, 'not on the public port')
  t.notMatch(await publicScrape.text(), /mcpgw_/)
  const scrape = await fetch(scrapeUrl)
  t.equal(scrape.status, 200)
  t.match(scrape.headers.get('content-type'), /^text\/plain/)
  t.match(await scrape.text(), /mcpgw_proxied_requests_total\{route="\/calc\/mcp",status="401"\} 1/, 'the main port\'s traffic is counted')
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/calc/mcp`)).status, 404, 'the metrics port serves nothing else')
  t.equal((await fetch(scrapeUrl, { method: 'POST' })).status, 404)
  await gateway.close()
  await t.rejects(fetch(scrapeUrl), 'closed with the gateway')
})

t.test('without METRICS_PORT, /metrics stays on the main port (the seed\'s behaviour)', async t => {
  const gateway = await buildGateway(t)
  const res = await gateway.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.body, /mcpgw_auth_failures_total/)
})

t.test('a METRICS_PORT that cannot be used stops start-up with a message naming it', async t => {
  const port = await freePort()
  await t.rejects(buildApp({ env: { KEYS_FILE: '', PORT: String(port), METRICS_PORT: String(port) }, configFile: { proxies: [] }, logger: false }),
    { name: 'ConfigError', message: /METRICS_PORT/ })
  await t.rejects(buildApp({ env: { KEYS_FILE: '', METRICS_PORT: '70000' }, configFile: { proxies: [] }, logger: false }), { name: 'ConfigError', message: /METRICS_PORT/ })

  const taken = createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const app = await buildApp({ env: { KEYS_FILE: '', HOST: '127.0.0.1', METRICS_PORT: String((taken.address() as { port: number }).port) }, configFile: { proxies: [] }, logger: false })
  t.teardown(async () => await app.close())
  await t.rejects(app.listen({ host: '127.0.0.1', port: 0 }), { message: /METRICS_PORT \d+: .*EADDRINUSE/ })
})
