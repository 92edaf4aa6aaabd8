import t from 'tap'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { finish, freePort, node, pollOk, workdir } from './helper.js'
import { startMcpUpstream } from './fixtures/mcp-upstream.js'

t.test('a bad configuration stops start-up with one message', async t => {
  const dir = workdir([{ pattern: 'calc/mcp', target_url: 'http://127.0.0.1:1/mcp' }])
  const run = await finish(node('src/server.ts', [], { BASE_URL: 'http://localhost:8080' }, dir))
  t.equal(run.code, 1)
  t.equal(run.stderr.trim(), 'Invalid configuration: proxies[0].pattern "calc/mcp" must start with "/"')
})

t.test('a newcomer: the gateway on the memory store, a token from `npm run token`, a tools/call', async t => {
  const upstream = await startMcpUpstream()
  t.teardown(upstream.close)
  const dir = workdir([{ pattern: '/calc/mcp', target_url: upstream.url }])
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const env = { BASE_URL: base, PORT: String(port), HOST: '127.0.0.1' }
  const gateway = node('src/server.ts', [], env, dir)
  const exited = finish(gateway)
  t.teardown(() => { gateway.kill('SIGKILL') })
  t.equal(await pollOk(`${base}/healthz`, gateway, 30_000), 200, 'the gateway starts')

  const challenge = await fetch(`${base}/calc/mcp`, { method: 'POST' })
  t.equal(challenge.status, 401)
  t.equal(challenge.headers.get('www-authenticate'), `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/calc/mcp", scope="mcp"`)
  t.equal((await (await fetch(`${base}/.well-known/oauth-protected-resource/calc/mcp`)).json()).resource, `${base}/calc/mcp`)

  const minted = await finish(node('src/cli/token.ts', ['--sub', 'ci-bot', '--route', '/calc/mcp', '--ttl', '1h'], env, dir))
  t.equal(minted.code, 0, minted.stderr)
  const token = minted.stdout.trim()
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
  t.equal(claims.sub, 'ci-bot')
  t.equal(claims.aud, `${base}/calc/mcp`)
  t.equal(claims.exp - claims.iat, 3600)

  const client = new Client({ name: 'newcomer', version: '1' })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/calc/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
  const result = await client.callTool({ name: 'add', arguments: { a: 40, b: 2 } }) as { content: Array<{ text: string }> }
  t.equal(result.content[0].text, '42')

  // Graceful shutdown: an in-flight SSE answer is ended cleanly, the process exits 0.
  const session = client.transport as StreamableHTTPClientTransport
  const res = await fetch(`${base}/calc/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session.sessionId ?? '', 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'progress', arguments: { steps: 50, delayMs: 200 } } })
  })
  const reader = res.body!.getReader()
  await reader.read()
  gateway.kill('SIGTERM')
  let ended = false
  for (;;) {
    const { done } = await reader.read()
    if (done) { ended = true; break }
  }
  t.ok(ended, 'the SSE stream ended cleanly instead of failing')
  const run = await exited
  t.equal(run.code, 0, 'exit 0 after SIGTERM')
  t.match(run.stdout, /store: memory/, 'says which store it runs on')
  t.notMatch(run.stdout, token, 'the token never appears in the logs')
  await client.close().catch(() => {})

  const badRoute = await finish(node('src/cli/token.ts', ['--sub', 'x', '--route', '/nope/mcp'], env, dir))
  t.equal(badRoute.code, 1)
  t.equal(badRoute.stderr.trim(), '--route /nope/mcp is not configured (routes: /calc/mcp)')
})
