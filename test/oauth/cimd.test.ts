import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import {
  cacheLifetime,
  CimdLimitError,
  ClientMetadataDocuments,
  DOCUMENT_INVALID,
  DOCUMENT_UNAVAILABLE,
  fetchClientMetadataDocument,
  isCimdClientId,
  MAX_CLIENT_ID_LENGTH
} from '../../src/oauth/cimd.js'
import { addressProblem, ipv6Groups } from '../../src/oauth/public-address.js'

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

async function closedPort (): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const free = (probe.address() as AddressInfo).port
  await new Promise(resolve => probe.close(resolve))
  return free
}

t.test('isCimdClientId: a client_id with a URL scheme is meant as a document', async t => {
  t.equal(isCimdClientId('MhZ9Xq0w3nL9p8q7r6s5tA'), false, 'a registered (DCR) client id')
  for (const id of ['https://app.example.com/oauth/client.json', 'http://app.example.com/c', 'https://app.example.com', 'ftp://x/y']) {
    t.equal(isCimdClientId(id), true, id)
  }
})

t.test('client ids that cannot be document URLs are refused before any lookup', async t => {
  const looked: string[] = []
  const resolveHost = async (hostname: string) => { looked.push(hostname); return [{ address: '93.184.216.34', family: 4 }] }
  const cases: Array<[string, boolean, RegExp]> = [
    ['not a url', false, /client_id is not a URL/],
    ['http://app.example.com/client.json', false, /must be an https URL/],
    ['https://app.example.com', false, /must contain a path/],
    ['https://app.example.com/', false, /must contain a path/],
    ['https://app.example.com/client.json#x', false, /must not contain a fragment/],
    ['https://user:pw@app.example.com/client.json', false, /must not contain credentials/],
    ['https://user@app.example.com/client.json', false, /must not contain credentials/],
    ['https://app.example.com/a/../client.json', false, /\. or \.\. path segments/],
    ['https://app.example.com/./client.json', false, /\. or \.\. path segments/],
    ['https://app.example.com/a/%2e%2e/client.json', false, /\. or \.\. path segments/],
    ['https://APP.example.com/client.json', false, /canonical form/],
    ['https://[::ffff:127.0.0.1]/client.json', true, /canonical form \(https:\/\/\[::ffff:7f00:1\]/],
    [`https://app.example.com/${'a'.repeat(MAX_CLIENT_ID_LENGTH)}`, true, /longer than 2048 characters/],
    ['https://93.184.216.34/client.json', false, /not an IP address/],
    ['https://[2606:2800:220:1::]/client.json', false, /not an IP address/],
    ['https://0x7f.1/client.json', false, /canonical form/],
    ['https://metadata/computeMetadata/v1/', false, /fully qualified host/],
    ['https://metadata.google.internal/computeMetadata/v1/', false, /public host/],
    ['https://kubernetes.default.svc.cluster.local/api', false, /public host/],
    ['https://localhost/client.json', false, /public host/],
    ['https://printer.local/client.json', false, /public host/],
    ['https://router.home.arpa/client.json', false, /public host/],
    ['https://docs.test/client.json', false, /public host/],
    [`${base}/doc/x`, false, /must be an https URL/]
  ]
  for (const [id, allowLoopback, detail] of cases) {
    const label = `${id.slice(0, 60)} allowLoopback=${allowLoopback}`
    await t.rejects(fetchClientMetadataDocument(id, { allowLoopback, resolveHost }), { code: 'invalid_client', statusCode: 401, detail, message: detail }, label)
    await t.rejects(new ClientMetadataDocuments({ allowLoopback, resolveHost }).get(id, async () => { t.fail('admitted') }), { code: 'invalid_client', detail }, `${label}: before any admission`)
  }
  t.same(looked, [], 'no host was looked up')
})

t.test('address rules: every non-public address, however it is written', async t => {
  for (const address of [
    '0.0.0.0', '0.255.255.255', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255', '192.168.0.1',
    '100.64.0.1', '100.127.255.255', '169.254.169.254', '192.0.0.8', '192.0.2.1', '198.51.100.1', '203.0.113.1',
    '192.88.99.1', '198.18.0.1', '198.19.255.255', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255',
    '::', '::0', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'fec0::1', 'feff::1', 'ff02::1', 'ff0e::1',
    '100::1', '2001:db8::1', '2001:db8:ffff::1', '3fff::1', '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:20::1',
    '5f00::1', '64:ff9b:1::a00:1', '::2:3:4:5:6', '1::1', '4000::1'
  ]) t.match(addressProblem(address), /(private or reserved|loopback) address/, address)

  // IPv4 inside IPv6, hex and dotted, judged by the IPv4 address.
  for (const [address, ipv4] of [
    ['::ffff:7f00:1', '127.0.0.1'], ['::ffff:127.0.0.1', '127.0.0.1'], ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1'], ['::FFFF:7F00:1', '127.0.0.1'],
    ['::ffff:a9fe:a9fe', '169.254.169.254'], ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::7f00:1', '127.0.0.1'], ['::127.0.0.1', '127.0.0.1'], ['::a00:1', '10.0.0.1'], ['::0.0.0.2', '0.0.0.2'],
    ['::ffff:0:7f00:1', '127.0.0.1'], ['::ffff:0:192.168.1.1', '192.168.1.1'],
    ['64:ff9b::7f00:1', '127.0.0.1'], ['64:ff9b::127.0.0.1', '127.0.0.1'], ['64:ff9b::a9fe:a9fe', '169.254.169.254'], ['64:ff9b::100.64.0.1', '100.64.0.1'],
    ['2002:7f00:1::1', '127.0.0.1'], ['2002:a00:1::', '10.0.0.1'], ['2002:c0a8:101:1::1', '192.168.1.1']
  ]) {
    const problem = addressProblem(address, true)
    t.match(problem, new RegExp(`for ${ipv4.replace(/\./g, '\\.')}, a (loopback|private or reserved) address`), `${address} (even with allowLoopback)`)
  }

  for (const address of ['93.184.216.34', '8.8.8.8', '1.1.1.1', '100.128.0.1', '172.32.0.1', '2606:4700:4700::1111', '2a00:1450:4001:81b::200e',
    '::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::808:808', '64:ff9b::8.8.8.8', '2002:808:808::1']) {
    t.equal(addressProblem(address), undefined, `${address} is public`)
  }

  t.match(addressProblem('127.0.0.1'), /127\.0\.0\.1 is a loopback address/)
  t.match(addressProblem('127.255.0.9'), /loopback/)
  t.match(addressProblem('::1'), /::1 is a loopback address/)
  t.match(addressProblem('0:0:0:0:0:0:0:1'), /loopback/)
  t.equal(addressProblem('127.0.0.1', true), undefined, 'allowLoopback admits 127.0.0.0/8')
  t.equal(addressProblem('127.8.9.10', true), undefined)
  t.equal(addressProblem('::1', true), undefined, 'and ::1')
  t.match(addressProblem('10.0.0.1', true), /private/, 'but nothing else')
  t.match(addressProblem('localhost'), /not an IP address/)

  t.same(ipv6Groups('::ffff:127.0.0.1'), ipv6Groups('::ffff:7f00:1'))
  t.same(ipv6Groups('1:2::7:8'), [1, 2, 0, 0, 0, 0, 7, 8])
  t.same(ipv6Groups('::'), [0, 0, 0, 0, 0, 0, 0, 0])
})

t.test('refuses non-public addresses without connecting, telling the client nothing about them', async t => {
  const before = Object.values(hits).reduce((a, b) => a + b, 0)
  const cases: Array<[string, boolean, RegExp]> = [
    ['https://10.0.0.1/client.json', true, /10\.0\.0\.1 is a private or reserved address/],
    ['https://169.254.169.254/latest/meta-data', true, /169\.254\.169\.254 is a private/],
    ['https://[fd00::1]/client.json', true, /fd00::1 is a private/],
    ['https://[::ffff:7f00:1]/client.json', true, /IPv4-mapped for 127\.0\.0\.1, a loopback address/],
    ['https://[::7f00:1]/client.json', true, /IPv4-compatible for 127\.0\.0\.1/], // written [::127.0.0.1]
    ['https://[64:ff9b::7f00:1]/client.json', true, /NAT64 for 127\.0\.0\.1/],
    ['https://[::ffff:0:a00:1]/client.json', true, /IPv4-translated for 10\.0\.0\.1/],
    [`https://[::ffff:7f00:1]:${port}/doc/mapped`, true, /loopback/],
    [`http://[::ffff:7f00:1]:${port}/doc/mapped`, true, /loopback/]
  ]
  for (const [url, allowLoopback, detail] of cases) {
    await t.rejects(fetchClientMetadataDocument(url, { allowLoopback }),
      { code: 'invalid_client', statusCode: 401, message: DOCUMENT_UNAVAILABLE, detail }, `${url} allowLoopback=${allowLoopback}`)
  }
  // The same addresses as DNS answers, in every textual form.
  for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::127.0.0.1', '64:ff9b::127.0.0.1', '10.1.2.3', 'fe80::1%2', '2002:a9fe:a9fe::1']) {
    await t.rejects(fetchClientMetadataDocument('https://docs.example.com/client.json', {
      resolveHost: async () => [{ address, family: address.includes(':') ? 6 : 4 }]
    }), { message: DOCUMENT_UNAVAILABLE, detail: /host docs\.example\.com refused: .* (loopback|private or reserved) address/ }, `resolved to ${address}`)
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
  }), { code: 'invalid_client', detail: /10\.1\.2\.3 is a private/ }, 'one bad address in the answer refuses the host')
  t.equal(hits['/doc/mixed'], undefined)

  await t.rejects(fetchClientMetadataDocument(`http://public.test:${port}/doc/http`, {
    allowLoopback: true,
    resolveHost: async () => [{ address: '93.184.216.34', family: 4 }]
  }), { message: DOCUMENT_UNAVAILABLE, detail: /http is only for loopback hosts/ })
  await t.rejects(fetchClientMetadataDocument('https://nothing.example.com/client.json', { resolveHost: async () => [] }),
    { code: 'invalid_client', message: DOCUMENT_UNAVAILABLE, detail: /has no address/ })
  await t.rejects(fetchClientMetadataDocument('https://nothing.example.com/client.json', {
    resolveHost: async () => { throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' }) }
  }), { code: 'invalid_client', message: DOCUMENT_UNAVAILABLE, detail: /does not resolve \(ENOTFOUND\)/ })
})

t.test('refuses bad responses, with one sentence for the client and the reason for the log', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['/redirect/a', DOCUMENT_UNAVAILABLE, /redirect \(HTTP 302\); redirects are not followed/],
    ['/big/a', DOCUMENT_UNAVAILABLE, /larger than 5120 bytes/],
    ['/big-chunked/a', DOCUMENT_UNAVAILABLE, /larger than 5120 bytes/],
    ['/html/a', DOCUMENT_UNAVAILABLE, /must be application\/json, not text\/html/],
    ['/missing/a', DOCUMENT_UNAVAILABLE, /answered HTTP 404/],
    ['/mismatch/a', DOCUMENT_INVALID, /client_id \("https:\/\/other\.example\/client\.json"\) is not its URL/],
    ['/notjson/a', DOCUMENT_INVALID, /not valid JSON/],
    ['/secret/a', DOCUMENT_INVALID, /must not contain a client_secret/],
    ['/basic/a', DOCUMENT_INVALID, /token_endpoint_auth_method must be one of none/],
    ['/badredirect/a', DOCUMENT_INVALID, /http is only allowed on loopback/]
  ]
  for (const [path, message, detail] of cases) {
    await t.rejects(fetchClientMetadataDocument(base + path, loopback),
      { code: 'invalid_client', statusCode: 401, message, detail }, path)
  }
  t.equal(hits['/doc/target'], undefined, 'the redirect was not followed')
  const closed = `http://127.0.0.1:${await closedPort()}/doc/closed`
  await t.rejects(fetchClientMetadataDocument(closed, loopback), { message: DOCUMENT_UNAVAILABLE, detail: /127\.0\.0\.1: ECONNREFUSED/ })
})

t.test('a slow server is cut off at the timeout', async t => {
  const started = Date.now()
  await t.rejects(fetchClientMetadataDocument(`${base}/slow/a`, { ...loopback, timeoutMs: 300 }),
    { code: 'invalid_client', message: DOCUMENT_UNAVAILABLE, detail: /did not arrive within 300 ms/ })
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

t.test('caps: fetches running at once, and a per-requester admission charged only for real fetches', async t => {
  const docs = new ClientMetadataDocuments({ ...loopback, maxConcurrent: 2 })
  const admitted: string[] = []
  const admit = (who: string) => async () => { admitted.push(who) }
  const slow = [docs.get(`${base}/slow/cap-1`, admit('a')), docs.get(`${base}/slow/cap-2`, admit('b'))]
  await t.rejects(docs.get(`${base}/slow/cap-3`, admit('c')), { name: 'CimdLimitError', detail: /2 fetches are already running/ }, 'a third fetch is refused')
  await t.rejects(docs.get(`${base}/slow/cap-3`), { statusCode: 429, code: 'temporarily_unavailable', headers: { 'retry-after': '60' } })
  const joined = docs.get(`${base}/slow/cap-1`, admit('d'))
  await Promise.all([...slow, joined])
  t.equal(hits['/slow/cap-3'], undefined, 'the refused one was not fetched')
  t.equal(hits['/slow/cap-1'], 1, 'joining a running fetch is no new fetch')
  t.same(admitted, ['a', 'b'], 'nor is it admitted again')

  await docs.get(`${base}/doc/cap-cached`, admit('e'))
  await docs.get(`${base}/doc/cap-cached`, admit('f'))
  t.same(admitted, ['a', 'b', 'e'], 'a cache hit is not admitted')

  const refuse = async (): Promise<void> => { throw new CimdLimitError('over') }
  await t.rejects(docs.get(`${base}/doc/cap-refused`, refuse), { name: 'CimdLimitError', statusCode: 429 })
  t.equal(hits['/doc/cap-refused'], undefined, 'an admission that refuses stops the fetch')
  await docs.get(`${base}/doc/cap-refused`)
  t.equal(hits['/doc/cap-refused'], 1, 'and leaves no trace: the next lookup fetches')
})
