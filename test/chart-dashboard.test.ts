// The chart's Grafana dashboard and PrometheusRule query only metrics and labels a running
// gateway really exports: real traffic (a login, a tool call, a refresh, refused tokens, an
// unreachable upstream) through a gateway on Redis, then one scrape of its metrics port.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { freePort, startRedis } from './helper.js'
import { startMcpUpstream } from './fixtures/mcp-upstream.js'
import { TestBrowser } from './fixtures/browser.js'
import { TestOAuthClient } from './fixtures/oauth-client.js'
import { REDIRECT, mcpClient, startAuthorizationServer, startLogin, textOf } from './fixtures/authorization.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
/** Labels Prometheus adds when it scrapes (the target's), not the gateway. */
const TARGET_LABELS = new Set(['job', 'instance', 'pod', 'namespace', 'service', 'container', 'endpoint'])

interface Selector { metric: string, labels: string[] }

/** Metric selectors and grouping labels of a PromQL expression (enough for the chart's queries). */
export function parsePromql (expr: string): { selectors: Selector[], grouping: string[] } {
  const grouping: string[] = []
  let rest = expr.replace(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g, (_m, list: string) => {
    grouping.push(...list.split(',').map(s => s.trim()).filter(s => s !== ''))
    return ' '
  })
  rest = rest.replace(/\[[^\]]*\]/g, ' ')
  const selectors: Selector[] = []
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset'])
  for (const m of rest.matchAll(/([a-zA-Z_:][\w:]*)\s*(\{([^}]*)\})?(\s*\()?/g)) {
    const [, name, braces, inside, call] = m
    if (call !== undefined && braces === undefined) continue // a function
    if (keywords.has(name)) continue
    const labels = [...(inside ?? '').matchAll(/(\w+)\s*(?:=~|!~|!=|=)\s*"/g)].map(l => l[1])
    selectors.push({ metric: name, labels })
  }
  return { selectors, grouping }
}

/** Sample name → label names seen on its series, from the text exposition format. */
function exposed (text: string): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? /.exec(line)
    if (m === null) continue
    const labels = series.get(m[1]) ?? new Set<string>()
    for (const l of (m[3] ?? '').matchAll(/(\w+)="/g)) labels.add(l[1])
    series.set(m[1], labels)
  }
  return series
}

t.test('every metric and label the dashboard and the alerts query is exported after real traffic', async t => {
  const helm = execFileSync(path.join(root, 'scripts', 'helm.sh'), { encoding: 'utf8', timeout: 300_000 }).trim()
  const rendered = parseAllDocuments(execFileSync(helm, [
    'template', 'my-gateway', path.join(root, 'chart'), '--set', 'grafanaDashboard.enabled=true', '--set', 'prometheusRule.enabled=true'
  ], { encoding: 'utf8' })).map(d => d.toJS() as Record<string, any>).filter(m => m?.kind !== undefined)
  const dashboardMap = rendered.find(m => m.kind === 'ConfigMap' && m.metadata.labels.grafana_dashboard === '1')
  t.ok(dashboardMap, 'a ConfigMap with the Grafana sidecar label')
  const dashboard = JSON.parse(dashboardMap?.data['mcp-gateway.json'])
  const rule = rendered.find(m => m.kind === 'PrometheusRule')
  const alerts = rule?.spec.groups.flatMap((g: any) => g.rules) as Array<{ alert: string, expr: string }>
  t.same(alerts.map(a => a.alert).sort(), ['MCPGatewayHigh5xxRate', 'MCPGatewayRedisUnreachable', 'MCPGatewayRefreshFailures', 'MCPGatewaySigningKeyNearRetirement', 'MCPGatewayUpstreamDown'])
  const queries = [
    ...dashboard.panels.flatMap((p: any) => p.targets.map((x: any) => ({ where: `panel "${p.title as string}"`, expr: x.expr as string }))),
    ...dashboard.templating.list.filter((v: any) => v.type === 'query').map((v: any) => ({ where: `variable ${v.name as string}`, expr: (v.definition as string).replace(/^label_values\((\w+),.*\)$/, '$1') })),
    ...alerts.map(a => ({ where: `alert ${a.alert}`, expr: a.expr }))
  ]
  t.ok(dashboard.panels.length >= 8, 'the dashboard has its panels')

  // Real traffic.
  const redis = await startRedis(t)
  const upstream = await startMcpUpstream()
  t.teardown(upstream.close)
  const metricsPort = await freePort()
  const { base } = await startAuthorizationServer(t, {
    config: {
      proxies: [
        { pattern: '/calc/mcp', target_url: upstream.url, tools: { allow: ['add'] } },
        { pattern: '/down/mcp', target_url: `http://127.0.0.1:${await freePort()}/mcp` }
      ]
    },
    env: { REDIS_URL: redis.url, METRICS_PORT: String(metricsPort) }
  })
  const provider = new TestOAuthClient(REDIRECT)
  const transport = await startLogin(`${base}/calc/mcp`, provider)
  const back = await new TestBrowser().authorize((provider.authorizationUrl as URL).href, REDIRECT)
  await transport.finishAuth(back.searchParams.get('code') as string)
  const client = await mcpClient(t, `${base}/calc/mcp`, provider)
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 2 } })), '4')
  t.equal(await auth(provider, { serverUrl: `${base}/calc/mcp` }), 'AUTHORIZED', 'a refresh')
  t.equal((await fetch(`${base}/calc/mcp`, { method: 'POST', headers: { authorization: 'Bearer not-a-token', 'content-type': 'application/json' }, body: '{}' })).status, 401)
  const downLogin = new TestOAuthClient(REDIRECT)
  const downTransport = await startLogin(`${base}/down/mcp`, downLogin)
  const downBack = await new TestBrowser().authorize((downLogin.authorizationUrl as URL).href, REDIRECT)
  await downTransport.finishAuth(downBack.searchParams.get('code') as string)
  const down = await fetch(`${base}/down/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${downLogin.tokens()?.access_token as string}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' })
  })
  t.equal(down.status, 502, 'an unreachable upstream')

  const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(scrape.status, 200)
  const series = exposed(await scrape.text())
  for (const { where, expr } of queries) {
    const { selectors, grouping } = parsePromql(expr)
    t.ok(selectors.length > 0, `${where} queries a metric`)
    const labelsOfQuery = new Set<string>()
    for (const { metric, labels } of selectors) {
      const seen = series.get(metric)
      if (seen === undefined) {
        t.fail(`${where}: ${metric} is not exported`)
        continue
      }
      for (const l of seen) labelsOfQuery.add(l)
      for (const l of labels) if (!TARGET_LABELS.has(l)) t.ok(seen.has(l), `${where}: ${metric} has label ${l}`)
    }
    for (const l of grouping) if (!TARGET_LABELS.has(l)) t.ok(labelsOfQuery.has(l), `${where}: grouped by ${l}, a label of its metrics`)
  }
  t.same(series.get('mcpgw_store_up'), new Set(['store']))
})

t.test('the PromQL reader finds metrics, matchers and groupings, not functions', async t => {
  t.same(parsePromql('histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{job=~"$job", status_code=~"5.."}[5m]))) > 0.5 and on() up'), {
    selectors: [{ metric: 'http_request_duration_seconds_bucket', labels: ['job', 'status_code'] }, { metric: 'up', labels: [] }],
    grouping: ['le', 'route']
  })
  t.same(parsePromql('time() - max(mcpgw_signing_key_created_timestamp_seconds > 0) > 83 * 86400').selectors, [{ metric: 'mcpgw_signing_key_created_timestamp_seconds', labels: [] }])
})
