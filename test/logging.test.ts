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
