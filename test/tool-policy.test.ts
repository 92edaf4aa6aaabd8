import t from 'tap'
import { Readable } from 'node:stream'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ToolPolicy } from '../src/policy/tool-policy.js'
import { SseMessages } from '../src/mcp/sse-messages.js'
import { buildGateway, mintToken } from './helper.js'
import { startMcpUpstream } from './fixtures/mcp-upstream.js'

t.test('policy: deny wins, globs match, grants add tools for named people, domains and clients', async t => {
  const policy = new ToolPolicy({
    allow: ['read_*', 'search'],
    deny: ['*_admin'],
    grants: [{ emails: ['ana@example.com'], domains: [], clients: [], allow: ['write_*'] }, { emails: [], domains: ['ops.example.com'], clients: ['ci-bot'], allow: ['restart'] }],
    requiredScopes: { write_file: ['files.write'] }
  })
  const bob = { email: 'bob@example.com', scopes: ['mcp'] }
  const ana = { email: 'Ana@Example.com', scopes: ['mcp'] }
  t.same(policy.decide('read_file', bob), { allowed: true })
  t.same(policy.decide('read_admin', ana), { allowed: false, reason: 'denied' })
  t.same(policy.decide('write_file', bob), { allowed: false, reason: 'not_allowed' })
  t.same(policy.decide('write_file', ana), { allowed: false, reason: 'insufficient_scope', needed: ['files.write'] })
  t.same(policy.decide('write_file', { ...ana, scopes: ['mcp', 'files.write'] }), { allowed: true })
  t.same(policy.decide('restart', { email: 'eve@ops.example.com', scopes: [] }), { allowed: true })
  t.same(policy.decide('restart', { scopes: [] }), { allowed: false, reason: 'not_allowed' }, 'no email, no grant')
  t.same(policy.decide('restart', { clientId: 'ci-bot', scopes: [] }), { allowed: true }, 'a grant can name a machine client')
  t.same(policy.decide('restart', { clientId: 'other-bot', scopes: [] }), { allowed: false, reason: 'not_allowed' })
  t.same(policy.decide('write_file', { clientId: 'ci-bot', scopes: ['files.write'] }), { allowed: false, reason: 'not_allowed' }, 'only the tools of its own grant')
  t.same(policy.decide('searchx', bob), { allowed: false, reason: 'not_allowed' }, 'globs are anchored')
  t.same(policy.toolScopes, ['files.write'])
})

t.test('SSE rewriting keeps events whole and in order across chunk boundaries', async t => {
  const input = ['event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message"}\n\n', 'data: {"jsonrpc":"2.0","id":1,"res', 'ult":{"tools":[{"name":"a"},{"name":"b"}]}}\r\n\r\n', ': keep-alive\n\n']
  const out: string[] = []
  const stream = Readable.from(input.map(s => Buffer.from(s))).pipe(new SseMessages(m => ({ ...m, result: { tools: [{ name: 'a' }] } })))
  for await (const chunk of stream) out.push(chunk.toString())
  t.equal(out.join(''), 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message"}\n\n' +
    'data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"}]}}\r\n\r\n: keep-alive\n\n')
})

t.test('SSE rewriting keeps a character split across chunks whole', async t => {
  const event = Buffer.from('data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"add","description":"Σ of two"}]}}\n\n')
  const split = event.indexOf(Buffer.from('Σ')) + 1
  const out: Buffer[] = []
  const stream = Readable.from([event.subarray(0, split), event.subarray(split)]).pipe(new SseMessages(m => ({ ...m })))
  for await (const chunk of stream) out.push(Buffer.from(chunk))
  t.equal(Buffer.concat(out).toString(), event.toString())
})

for (const jsonResponse of [false, true]) {
  t.test(`tool policy through the gateway (${jsonResponse ? 'JSON' : 'SSE'} answers)`, async t => {
    const upstream = await startMcpUpstream({ jsonResponse })
    t.teardown(upstream.close)
    const logLines: string[] = []
    const gateway = await buildGateway(t, {
      listen: true,
      logLines,
      config: {
        proxies: [{
          pattern: '/calc/mcp',
          target_url: upstream.url,
          tools: { allow: ['add', 'headers'], deny: ['headers'], grants: [{ emails: ['ana@example.com'], allow: ['progress'] }], required_scopes: { progress: ['calc.stream'] } }
        }, { pattern: '/open/mcp', target_url: upstream.url, audit_arguments: true }]
      }
    })
    const base = gateway.config.env.BASE_URL
    const connect = async (pattern: string, token: string): Promise<Client> => {
      const client = new Client({ name: 'policy-test', version: '1' })
      await client.connect(new StreamableHTTPClientTransport(new URL(base + pattern), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
      t.teardown(async () => await client.close())
      return client
    }
    const bobToken = mintToken(gateway, '/calc/mcp', { sub: 'bob', email: 'bob@example.com' })
    const bob = await connect('/calc/mcp', bobToken)
    const ana = await connect('/calc/mcp', mintToken(gateway, '/calc/mcp', { sub: 'ana', email: 'ana@example.com', scopes: ['mcp', 'calc.stream'] }))

    t.same((await bob.listTools()).tools.map(x => x.name), ['add'], 'bob sees only what he may call')
    t.same((await ana.listTools()).tools.map(x => x.name).sort(), ['add', 'progress'], 'ana sees her grant too')

    const before = upstream.requests.filter(r => r.body?.includes('"progress"')).length
    const denied = await bob.callTool({ name: 'progress', arguments: { steps: 1, delayMs: 0 } }).catch((err: Error & { code?: number }) => err)
    t.match(denied, { code: -32001, message: /Tool "progress" is not allowed for bob@example\.com/ })
    const deniedHeaders = await ana.callTool({ name: 'headers', arguments: {} }).catch((err: Error & { code?: number }) => err)
    t.match(deniedHeaders, { code: -32001, message: /Tool "headers" is denied on this route/ })
    t.equal(upstream.requests.filter(r => r.body?.includes('"progress"')).length, before, 'a denied call never reaches the upstream')

    const result = await ana.callTool({ name: 'progress', arguments: { steps: 1, delayMs: 0 } }) as { content: Array<{ text: string }> }
    t.equal(result.content[0].text, 'done after 1 steps')

    // A grant without the tool's scope: 403 asking for the route's scopes plus the tool's.
    const noScope = mintToken(gateway, '/calc/mcp', { sub: 'ana', email: 'ana@example.com' })
    const stepUp = await fetch(`${base}/calc/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${noScope}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'progress', arguments: { steps: 1, delayMs: 0 } } })
    })
    t.equal(stepUp.status, 403)
    t.match(stepUp.headers.get('www-authenticate'), /error="insufficient_scope", scope="mcp calc\.stream"/)
    const prm = await (await fetch(`${base}/.well-known/oauth-protected-resource/calc/mcp`)).json()
    t.same(prm.scopes_supported, ['mcp', 'calc.stream'])

    // 2026-07-28: Mcp-Method / Mcp-Name must say what the body says.
    const mismatch = await fetch(`${base}/calc/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bobToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-method': 'tools/call', 'mcp-name': 'add' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'headers', arguments: {} } })
    })
    t.equal(mismatch.status, 400)
    t.match(await mismatch.json(), { id: 6, error: { code: -32600, message: 'Mcp-Name "add" does not match the body\'s "headers"' } })

    await bob.callTool({ name: 'add', arguments: { a: 1, b: 2 } })
    const open = await connect('/open/mcp', mintToken(gateway, '/open/mcp', { sub: 'carol', email: 'carol@example.com' }))
    await open.callTool({ name: 'add', arguments: { a: 20, b: 22 } })

    const audits = logLines.map(l => JSON.parse(l)).filter(l => l.audit !== undefined).map(l => l.audit)
    t.match(audits.find(a => a.tool === 'add' && a.sub === 'bob'), { route: '/calc/mcp', outcome: 'ok', email: 'bob@example.com', client: 'test-client' })
    t.notOk('arguments' in audits.find(a => a.sub === 'bob' && a.tool === 'add'), 'no arguments unless the route opts in')
    t.match(audits.find(a => a.sub === 'carol'), { route: '/open/mcp', tool: 'add', outcome: 'ok', arguments: { a: 20, b: 22 } })
    t.match(audits.filter(a => a.outcome === 'denied').map(a => a.tool).sort(), ['headers', 'progress'])
    t.notMatch(logLines.join(''), bobToken, 'no token in the audit trail')
    const metrics = await gateway.inject('/metrics')
    t.match(metrics.body, /mcpgw_tool_calls_total\{route="\/calc\/mcp",tool="add",outcome="ok"\} 1/)
    t.match(metrics.body, /mcpgw_tool_calls_total\{route="\/calc\/mcp",tool="progress",outcome="denied"\} 1/)
    t.match(metrics.body, /mcpgw_tool_call_duration_seconds_count\{route="\/open\/mcp",tool="add"\} 1/)
  })
}

t.test('the README worked example loads and means what it says', async t => {
  const { readFileSync } = await import('node:fs')
  const { parse } = await import('yaml')
  const { loadGatewayConfig } = await import('../src/config/gateway-config.js')
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const block = /```yaml\n(proxies:\n {2}- pattern: "\/files\/mcp"[\s\S]*?)```/.exec(readme)
  t.ok(block, 'the example is in the README')
  const config = loadGatewayConfig({ env: {}, configFile: parse(block![1]) })
  const policy = config.routes[0].toolPolicy!
  const carol = { email: 'carol@example.com', scopes: ['mcp'] }
  const ana = { email: 'ana@example.com', scopes: ['mcp'] }
  t.same(policy.decide('read_file', carol), { allowed: true })
  t.same(policy.decide('write_file', carol), { allowed: false, reason: 'not_allowed' })
  t.same(policy.decide('write_file', ana), { allowed: false, reason: 'insufficient_scope', needed: ['files.write'] })
  t.same(policy.decide('write_file', { ...ana, scopes: ['mcp', 'files.write'] }), { allowed: true })
  t.same(config.routes[0].allowedDomains, ['example.com'])
})
