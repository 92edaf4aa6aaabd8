import t from 'tap'
import { request } from 'undici'
import fc from 'fast-check'
import { startMcpUpstream } from '../fixtures/mcp-upstream.js'
import { registerClient, tokenRequest } from '../fixtures/authorization.js'
import { sleep, startRedis } from '../helper.js'
import { postOversized, startCluster, steadyLoad, type LoadFigures } from './cluster.js'

// Fault scenarios against two gateway processes sharing one Redis, under steady load from SDK
// clients. Each prints what it sent, what failed and what was lost, and fails on any loss.

const report = (t: { comment: (...a: unknown[]) => void }, name: string, f: LoadFigures): void => {
  t.comment(`${name}: sent ${f.sent}, ok ${f.ok}, failed ${f.failed}, lost ${f.sent - f.ok - f.failed}${f.errors.length > 0 ? `; first errors: ${f.errors.join(' | ')}` : ''}`)
}

/** A registration and a refresh grant (for a token the store never issued) on one replica. */
const oauthCalls = async (base: string, clientId: string): Promise<Array<{ name: string, status: number, body: Record<string, unknown>, headers: Headers }>> => [
  { name: 'POST /oauth/register', ...await registerClient(base) },
  { name: 'POST /oauth/token', ...await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: 'never-issued', client_id: clientId }) }
]

t.test('faults', async t => {
  const redis = await startRedis(t, { appendonly: true })
  const upstream = await startMcpUpstream()
  let currentUpstream = upstream
  t.teardown(async () => await currentUpstream.close())
  const cluster = await startCluster(redis.url, [{ pattern: '/calc/mcp', target_url: upstream.url }])
  t.teardown(cluster.stop)
  const [a, b] = cluster.gateways
  const token = await cluster.mint('load-user')

  await t.test('Redis killed for 10 s: proxied calls keep succeeding, OAuth endpoints answer 503 with Retry-After, readiness says so, all recover unaided', async t => {
    const clientId = (await registerClient(a.url)).body.client_id as string
    const load = [steadyLoad(`${a.url}/calc/mcp`, token, 3), steadyLoad(`${b.url}/calc/mcp`, token, 3)]
    await sleep(1000)
    await redis.kill()
    await sleep(500)
    t.equal((await fetch(`${a.url}/readyz`)).status, 503, 'A not ready')
    t.equal((await fetch(`${b.url}/readyz`)).status, 503, 'B not ready')
    const whileDown = [...await oauthCalls(a.url, clientId), ...await oauthCalls(b.url, clientId)]
    for (const call of whileDown) {
      t.equal(call.status, 503, `${call.name} while Redis is down: 503`)
      t.ok(Number(call.headers.get('retry-after')) > 0, 'with Retry-After')
      t.equal(call.body.error, 'temporarily_unavailable', 'and an OAuth error')
    }
    t.comment(`OAuth calls while Redis was down: ${whileDown.length}, answered 503 with Retry-After: ${whileDown.filter(c => c.status === 503 && c.headers.has('retry-after')).length}`)
    await sleep(9000)
    await redis.start()
    let ready = false
    for (let i = 0; i < 100 && !ready; i++) {
      ready = (await fetch(`${a.url}/readyz`)).ok && (await fetch(`${b.url}/readyz`)).ok
      if (!ready) await sleep(100)
    }
    t.ok(ready, 'both ready again')
    for (const call of [...await oauthCalls(a.url, clientId), ...await oauthCalls(b.url, clientId)]) {
      t.equal(call.status, call.name === 'POST /oauth/register' ? 201 : 400, `${call.name} works again`)
      if (call.status === 400) t.equal(call.body.error, 'invalid_grant', 'the store answered: no such refresh token')
    }
    await sleep(500)
    const figures = await Promise.all(load.map(async l => await l.stop()))
    figures.forEach((f, i) => report(t, `replica ${i === 0 ? 'A' : 'B'}`, f))
    for (const f of figures) {
      t.ok(f.sent > 50, 'load was steady')
      t.equal(f.failed, 0, 'no call failed')
      t.equal(f.sent, f.ok, 'nothing lost')
    }
    t.same([...a.exits, ...b.exits], [], 'no gateway process exited')
    for (const g of [a, b]) if (g.exits.length > 0) t.comment(`${g.url} exited ${g.exits.join(', ')}:\n${g.output.slice(-3000)}`)
  })

  await t.test('one replica restarted mid-load: the other sees no error, the restarted one closes streams cleanly and clients reconnect', async t => {
    const onA = steadyLoad(`${a.url}/calc/mcp`, token, 3)
    const onB = steadyLoad(`${b.url}/calc/mcp`, token, 2)
    // An SSE answer in flight on B when it goes down.
    const stream = await fetch(`${b.url}/calc/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'sse', version: '1' } } })
    })
    const session = stream.headers.get('mcp-session-id') ?? ''
    await stream.text()
    const progress = await fetch(`${b.url}/calc/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'progress', arguments: { steps: 50, delayMs: 200 } } })
    })
    const reader = progress.body!.getReader()
    await reader.read()
    await sleep(500)
    const okOnBBefore = onB.figures.ok
    t.equal(await b.stop(), 0, 'B exits 0 on SIGTERM')
    let cleanEnd = false
    try {
      for (;;) if ((await reader.read()).done) { cleanEnd = true; break }
    } catch {}
    t.ok(cleanEnd, 'the SSE stream on B ended cleanly')
    await b.start()
    await sleep(2000)
    const [fa, fb] = [await onA.stop(), await onB.stop()]
    report(t, 'replica A (kept running)', fa)
    report(t, 'replica B (restarted)', fb)
    t.equal(fa.failed, 0, 'clients of A saw no error')
    t.equal(fa.sent, fa.ok, 'nothing lost on A')
    t.ok(fb.ok > okOnBBefore, 'clients of B reconnected and went on')
    t.equal(fb.sent, fb.ok + fb.failed, 'every call on B answered or failed visibly, none lost')
  })

  await t.test('upstream killed and restarted: 502 while it is down, recovery after', async t => {
    const port = currentUpstream.port
    await currentUpstream.close()
    const down = await fetch(`${a.url}/calc/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}'
    })
    t.equal(down.status, 502)
    t.match(await down.json(), { error: 'bad_gateway', route: '/calc/mcp' })
    currentUpstream = await startMcpUpstream({ port })
    const load = steadyLoad(`${a.url}/calc/mcp`, token, 2)
    await sleep(1500)
    const f = await load.stop()
    report(t, 'after the upstream came back', f)
    t.ok(f.ok > 10, 'calls succeed again')
    t.equal(f.failed, 0)
  })

  await t.test('fuzzing the proxied route: no 5xx, the documented 4xx, limits enforced', async t => {
    const url = `${a.url}/calc/mcp`
    const sent = { n: 0 }
    await fc.assert(fc.asyncProperty(
      fc.oneof(fc.string(), fc.json(), fc.uint8Array({ maxLength: 512 }).map(b => Buffer.from(b).toString('latin1'))),
      fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8', 'multipart/form-data; boundary=x', ''),
      fc.constantFrom('POST', 'GET', 'DELETE'),
      fc.boolean(),
      async (body, type, method, withToken) => {
        sent.n++
        const headers: Record<string, string> = { accept: 'application/json, text/event-stream' }
        if (type !== '') headers['content-type'] = type
        if (withToken) headers.authorization = `Bearer ${token}`
        const res = await request(url, { method, headers, body: method === 'POST' ? body : undefined })
        const text = await res.body.text()
        if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${method} ${type}: ${text.slice(0, 200)}`)
        if (!withToken && res.statusCode !== 401) throw new Error(`no token but ${res.statusCode}`)
      }
    ), { numRuns: 300, interruptAfterTimeLimit: 60_000 })
    t.comment(`fuzzed requests: ${sent.n}`)

    const big = await postOversized(url, { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, 5 * 1024 * 1024)
    t.equal(big.status, 413, 'bodies over 4 MiB: 413')
    t.match(JSON.parse(big.body), { error: 'invalid_request' })
    const huge = await request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-filler': 'y'.repeat(20 * 1024) } }).catch((err: Error) => err)
    t.equal(huge instanceof Error ? huge.message : huge.statusCode, 431, 'headers over 16 KiB: 431')
    t.equal((await fetch(`${a.url}/healthz`)).status, 200, 'still alive')
  })
})
