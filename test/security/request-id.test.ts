// A client-chosen X-Request-Id lands in every log line of its request (and in what the upstream
// receives): newlines, JSON-breaking characters or a 10 KB id must not be logged as sent.
import t from 'tap'
import { buildGateway } from '../helper.js'

const FORGED = [
  { name: 'a newline that forges a second log line', id: 'x"}\n{"level":50,"msg":"forged admin login"' },
  { name: 'JSON-breaking quotes and braces', id: 'id","status":200,"user":"admin' },
  { name: 'a 10 KB id', id: 'a'.repeat(10 * 1024) },
  { name: 'control characters', id: 'abc\u001b[31mred' }
]

t.test('a forged X-Request-Id is replaced by a generated one in the log', async t => {
  const logLines: string[] = []
  const app = await buildGateway(t, { logLines })
  for (const { name, id } of FORGED) {
    logLines.length = 0
    // The header value as a raw client could send it; inject does not check header syntax.
    const res = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': id } })
    t.equal(res.statusCode, 200, `${name}: the request is still served`)
    const text = logLines.join('')
    t.notOk(text.includes(id), `${name}: the id is not in the log as sent`)
    const lines = text.split('\n').filter(l => l !== '')
    t.equal(lines.length, 1, `${name}: one log line, none forged`)
    const line = JSON.parse(lines[0]) as { reqId: string, msg: string }
    t.equal(line.msg, 'request')
    t.match(line.reqId, /^[0-9a-f-]{36}$/, `${name}: a generated id instead`)
  }
})

t.test('a well-formed X-Request-Id from a load balancer is kept', async t => {
  const logLines: string[] = []
  const app = await buildGateway(t, { logLines })
  const ids = ['req-42', '4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a88', 'edge-1:req.42', '0f8fad5b-d9cb-469f-a165-70867728950e', 'a'.repeat(128)]
  for (const id of ids) {
    logLines.length = 0
    await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': id } })
    t.equal(JSON.parse(logLines.join('')).reqId, id, `${id.slice(0, 40)} kept`)
  }
  logLines.length = 0
  await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'a'.repeat(129) } })
  t.match(JSON.parse(logLines.join('')).reqId, /^[0-9a-f-]{36}$/, 'one character over the limit: generated')
})
