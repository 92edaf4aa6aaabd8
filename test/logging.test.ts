import t from 'tap'
import { buildApp } from '../src/app.js'
import { mintToken } from './helper.js'

t.test('one log line per request, with a request id, and no token or query string in it', async t => {
  const lines: string[] = []
  const app = await buildApp({
    env: { BASE_URL: 'http://gateway.test', KEYS_FILE: '' },
    configFile: { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] },
    logStream: { write: line => { lines.push(line) } }
  })
  t.teardown(async () => await app.close())
  await app.ready()
  const token = mintToken(app, '/calc/mcp')
  const wrong = mintToken(app, '/calc/mcp', { ttlSeconds: -5 })
  lines.length = 0

  await app.inject({ method: 'POST', url: '/calc/mcp?code=secret-code&state=s', headers: { authorization: `Bearer ${wrong}`, cookie: 'session=abc', 'x-request-id': 'req-42' }, payload: '{}' })
  await app.inject({ method: 'POST', url: '/calc/mcp', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })

  const all = lines.join('')
  t.notMatch(all, token, 'no valid token in the log')
  t.notMatch(all, wrong, 'no refused token in the log')
  t.notMatch(all, 'secret-code', 'no query string in the log')
  t.notMatch(all, 'session=abc', 'no cookie in the log')
  const requests = lines.map(l => JSON.parse(l)).filter(l => l.msg === 'request')
  t.equal(requests.length, 2, 'one line per request')
  t.match(requests[0], { reqId: 'req-42', method: 'POST', path: '/calc/mcp', status: 401 })
  t.match(requests[1], { method: 'POST', path: '/calc/mcp', status: 502 })
  t.match(requests[1].reqId, /^[0-9a-f-]{36}$/, 'a generated request id')
})

t.test('a tools/call leaves one line that carries its audit record; argument values keep the redaction', async t => {
  const lines: string[] = []
  const app = await buildApp({
    env: { BASE_URL: 'http://gateway.test', KEYS_FILE: '' },
    configFile: {
      proxies: [
        { pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' },
        { pattern: '/audit/mcp', target_url: 'http://127.0.0.1:9/mcp', audit_arguments: true }
      ]
    },
    logStream: { write: line => { lines.push(line) } }
  })
  t.teardown(async () => await app.close())
  await app.ready()
  const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a: 1, token: 'sekrit-argument' } } })
  for (const pattern of ['/calc/mcp', '/audit/mcp']) {
    lines.length = 0
    const res = await app.inject({ method: 'POST', url: pattern, headers: { authorization: `Bearer ${mintToken(app, pattern, { sub: 'ana' })}`, 'content-type': 'application/json' }, payload: call })
    t.equal(res.statusCode, 502, `${pattern}: the dead upstream answers 502`)
    t.equal(lines.length, 1, `${pattern}: one line for the request and its call`)
    const line = JSON.parse(lines[0])
    t.match(line, { msg: 'request', path: pattern, status: 502, audit: { route: pattern, tool: 'add', outcome: 'http_502', sub: 'ana' } })
    t.notMatch(lines[0], 'sekrit-argument', `${pattern}: an argument named token is never written`)
  }
  t.same(JSON.parse(lines[0]).audit.arguments, { a: 1, token: '[redacted]' }, 'the audited route logs the arguments, redacted')
})
