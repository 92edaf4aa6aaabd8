import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import {
  cacheLifetime,
  ClientMetadataDocuments,
  fetchClientMetadataDocument,
  isCimdClientId
} from '../../src/oauth/cimd.js'

// A metadata document server on loopback. Each path prefix is one behaviour; every document
// names itself (Host header + path) as its client_id unless the test wants a mismatch.
const hits: Record<string, number> = {}
const hosts: string[] = []
function documentFor (req: IncomingMessage, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    client_id: `http://${req.headers.host}${req.url}`,
    client_name: 'Loopback Test Client',
    redirect_uris: ['http://127.0.0.1/callback'],
    ...extra
  })
}
function json (res: ServerResponse, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(body)
}
const server = createServer((req, res) => {
  const path = req.url ?? ''
  hits[path] = (hits[path] ?? 0) + 1
  hosts.push(req.headers.host ?? '')
  const kind = path.split('/')[1]
  switch (kind) {
    case 'doc': return json(res, documentFor(req), { 'cache-control': 'max-age=60' })
    case 'silent': return json(res, documentFor(req))
    case 'nostore': return json(res, documentFor(req), { 'cache-control': 'no-store' })
    case 'redirect': return res.writeHead(302, { location: '/doc/target' }).end()
    case 'big': return json(res, documentFor(req, { padding: 'x'.repeat(6000) }))
    case 'big-chunked': {
      // No content-length: the limit must hold while reading.
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"padding":"')
      const timer = setInterval(() => { if (!res.write('x'.repeat(1024))) clearInterval(timer) }, 1)
      res.on('close', () => clearInterval(timer))
      return
    }
    case 'mismatch': return json(res, JSON.stringify({ client_id: 'https://other.example/client.json', redirect_uris: ['http://127.0.0.1/cb'] }))
    case 'html': return res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>')
    case 'notjson': return json(res, '{not json')
    case 'missing': return res.writeHead(404).end()
    case 'secret': return json(res, documentFor(req, { client_secret: 's3cret' }))
    case 'basic': return json(res, documentFor(req, { token_endpoint_auth_method: 'client_secret_basic' }))
    case 'badredirect': return json(res, documentFor(req, { redirect_uris: ['http://evil.example/cb'] }))
    case 'slow': return setTimeout(() => json(res, documentFor(req)), 2000).unref()
    default: return res.writeHead(500).end()
  }
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const port = (server.address() as AddressInfo).port
const base = `http://127.0.0.1:${port}`
t.teardown(() => { server.closeAllConnections(); server.close() })

const loopback = { allowLoopback: true }

t.test('isCimdClientId', async t => {
  t.equal(isCimdClientId('https://app.example.com/oauth/client.json'), true)
  t.equal(isCimdClientId('https://app.example.com/client?v=2'), true)
  for (const id of [
    'MhZ9Xq0w3nL9p8q7r6s5tA', // a registered (DCR) client id
    'http://app.example.com/client.json',
    'https://app.example.com',
    'https://app.example.com/',
    'https://app.example.com/client.json#x',
    'https://user:pw@app.example.com/client.json',
    'https://app.example.com/a/../client.json',
    'https://app.example.com/./client.json',
    'https://app.example.com/a/%2e%2e/client.json',
    'https://APP.example.com/client.json'
  ]) t.equal(isCimdClientId(id), false, id)
  t.equal(isCimdClientId(`${base}/doc/x`), false, 'http needs allowLoopback')
  t.equal(isCimdClientId(`${base}/doc/x`, true), true)
})

t.test('fetches and validates a document over a real socket', async t => {
  const url = `${base}/doc/fetch`
  const { client, maxAgeSeconds } = await fetchClientMetadataDocument(url, loopback)
  t.same(client, {
    client_id: url,
    client_name: 'Loopback Test Client',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none'
  })
  t.equal(maxAgeSeconds, 60)
  t.equal(hits['/doc/fetch'], 1)
})

t.test('refuses non-public addresses without connecting', async t => {
  const before = Object.values(hits).reduce((a, b) => a + b, 0)
  const cases: Array<[string, boolean, RegExp]> = [
    ['https://10.0.0.1/client.json', false, /10\.0\.0\.1 is a private or reserved address/],
    ['https://10.0.0.1/client.json', true, /private or reserved/],
    ['https://169.254.169.254/latest/meta-data', true, /169\.254\.169\.254 is a private/],
    ['https://100.64.0.1/client.json', false, /private or reserved/],
    ['https://192.168.1.1/client.json', false, /private or reserved/],
    ['https://0.0.0.0/client.json', false, /private or reserved/],
    ['https://224.0.0.1/client.json', false, /private or reserved/],
    ['https://[fd00::1]/client.json', false, /fd00::1 is a private/],
    ['https://[fe80::1]/client.json', false, /private or reserved/],
    ['https://[::]/client.json', false, /private or reserved/],
    ['https://[::ffff:7f00:1]/client.json', true, /IPv4-mapped/], // ::ffff:127.0.0.1,
    ['https://[::ffff:808:808]/client.json', false, /IPv4-mapped/], // ::ffff:8.8.8.8
    ['https://[::ffff:127.0.0.1]/client.json', true, /canonical form/],
    ['https://127.0.0.1/client.json', false, /127\.0\.0\.1 is a loopback address/],
    ['https://[::1]/client.json', false, /::1 is a loopback address/],
    [`https://localhost:${port}/doc/localhost`, false, /host localhost refused: .* is a loopback address/],
    [`${base}/doc/x`, false, /client_id must be an https URL/]
  ]
  for (const [url, allowLoopback, message] of cases) {
    await t.rejects(fetchClientMetadataDocument(url, { allowLoopback }),
      { code: 'invalid_client', statusCode: 401, message }, `${url} allowLoopback=${allowLoopback}`)
  }
  t.equal(Object.values(hits).reduce((a, b) => a + b, 0), before, 'the loopback server saw no request')
})

t.test('connects to the vetted address, not to a second DNS answer', async t => {
  const resolved: string[] = []
  const resolveHost = async (hostname: string) => {
    resolved.push(hostname)
    return [{ address: '127.0.0.1', family: 4 }]
  }
  // `.test` never resolves in real DNS: the request can only arrive through the pinned address.
  const url = `http://cimd.test:${port}/doc/pinned`
  const { client } = await fetchClientMetadataDocument(url, { allowLoopback: true, resolveHost })
  t.equal(client.client_id, url)
  t.same(resolved, ['cimd.test'], 'resolved once')
  t.equal(hosts.at(-1), `cimd.test:${port}`, 'Host header keeps the name')

  await t.rejects(fetchClientMetadataDocument(`http://cimd.test:${port}/doc/mixed`, {
    allowLoopback: true,
    resolveHost: async () => [{ address: '127.0.0.1', family: 4 }, { address: '10.1.2.3', family: 4 }]
  }), { code: 'invalid_client', message: /10\.1\.2\.3 is a private/ }, 'one bad address in the answer refuses the host')
  t.equal(hits['/doc/mixed'], undefined)

  await t.rejects(fetchClientMetadataDocument('https://nothing.test/client.json', { resolveHost: async () => [] }),
    { code: 'invalid_client', message: /has no address/ })
  await t.rejects(fetchClientMetadataDocument('https://nothing.invalid/client.json', {
    resolveHost: async () => { throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' }) }
  }), { code: 'invalid_client', message: /does not resolve \(ENOTFOUND\)/ })
})

t.test('refuses bad responses', async t => {
  const cases: Array<[string, RegExp]> = [
    ['/redirect/a', /redirect \(HTTP 302\); redirects are not followed/],
    ['/big/a', /larger than 5120 bytes/],
    ['/big-chunked/a', /larger than 5120 bytes/],
    ['/mismatch/a', /client_id \("https:\/\/other\.example\/client\.json"\) is not its URL/],
    ['/html/a', /must be application\/json, not text\/html/],
    ['/notjson/a', /not valid JSON/],
    ['/missing/a', /answered HTTP 404/],
    ['/secret/a', /must not contain a client_secret/],
    ['/basic/a', /token_endpoint_auth_method must be one of none/],
    ['/badredirect/a', /http is only allowed on loopback/]
  ]
  for (const [path, message] of cases) {
    await t.rejects(fetchClientMetadataDocument(base + path, loopback),
      { code: 'invalid_client', statusCode: 401, message }, path)
  }
  t.equal(hits['/doc/target'], undefined, 'the redirect was not followed')
})

t.test('a slow server is cut off at the timeout', async t => {
  const started = Date.now()
  await t.rejects(fetchClientMetadataDocument(`${base}/slow/a`, { ...loopback, timeoutMs: 300 }),
    { code: 'invalid_client', message: /did not arrive within 300 ms/ })
  const elapsed = Date.now() - started
  t.ok(elapsed >= 250 && elapsed < 1500, `gave up after ${elapsed} ms`)
})

t.test('cache lifetime from Cache-Control', async t => {
  t.equal(cacheLifetime(undefined), 300, 'silent: 5 minutes')
  t.equal(cacheLifetime('public, max-age=120'), 120)
  t.equal(cacheLifetime('max-age=31536000'), 86400, 'capped at a day')
  t.equal(cacheLifetime('no-store'), 0)
  t.equal(cacheLifetime('max-age=600, no-cache'), 0)
  t.equal(cacheLifetime('max-age=banana'), 300)
})

t.test('ClientMetadataDocuments caches per the document headers', async t => {
  let now = 1_000_000
  const docs = new ClientMetadataDocuments({ ...loopback, now: () => now })

  const cached = `${base}/doc/cached`
  await docs.get(cached)
  const again = await docs.get(cached)
  t.equal(again.client_id, cached)
  t.equal(hits['/doc/cached'], 1, 'cache hit does not refetch')
  now += 61_000
  await docs.get(cached)
  t.equal(hits['/doc/cached'], 2, 'refetched after max-age')

  await docs.get(`${base}/nostore/a`)
  await docs.get(`${base}/nostore/a`)
  t.equal(hits['/nostore/a'], 2, 'no-store refetches')

  await docs.get(`${base}/silent/a`)
  now += 299_000
  await docs.get(`${base}/silent/a`)
  t.equal(hits['/silent/a'], 1, 'no Cache-Control: cached for 5 minutes')
  now += 2_000
  await docs.get(`${base}/silent/a`)
  t.equal(hits['/silent/a'], 2)

  await Promise.all([docs.get(`${base}/doc/concurrent`), docs.get(`${base}/doc/concurrent`)])
  t.equal(hits['/doc/concurrent'], 1, 'concurrent lookups share one fetch')

  await t.rejects(docs.get(`${base}/mismatch/cached`), { code: 'invalid_client' })
  await t.rejects(docs.get(`${base}/mismatch/cached`), { code: 'invalid_client' })
  t.equal(hits['/mismatch/cached'], 2, 'failures are not cached')
})

t.test('the cache is bounded, least recently used out first', async t => {
  const docs = new ClientMetadataDocuments({ ...loopback, maxEntries: 2 })
  const [a, b, c] = ['a', 'b', 'c'].map(n => `${base}/doc/lru-${n}`)
  await docs.get(a)
  await docs.get(b)
  await docs.get(a) // a is now the most recent; b is the oldest
  await docs.get(c) // evicts b
  await docs.get(a)
  await docs.get(c)
  t.equal(hits['/doc/lru-a'], 1)
  t.equal(hits['/doc/lru-c'], 1)
  await docs.get(b)
  t.equal(hits['/doc/lru-b'], 2, 'the evicted one is fetched again')
})
