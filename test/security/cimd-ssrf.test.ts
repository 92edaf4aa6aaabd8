/**
 * Attacks on Client ID Metadata Documents: the gateway fetches the URL a stranger names as
 * client_id. The attacker must learn nothing about internal addresses from the answer, must not
 * reach an internal host through any way of writing its address, and must not turn the gateway
 * into a request cannon (per address, in total, or by repeating one URL).
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildGateway, startRedis } from '../helper.js'
import { REDIRECT, VERIFIER, authorizeUrl, startAuthorizationServer, startReplica } from '../fixtures/authorization.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }
const GENERIC = 'The client metadata document could not be fetched.'

/** The sentence an error page shows (the page has one paragraph). */
function pageMessage (body: string): string {
  return /<p>([^<]*)<\/p>/.exec(body)?.[1] ?? ''
}

/** GET /oauth/authorize from `remoteAddress`; no resource, so the one route is meant. */
async function authorize (app: FastifyInstance, clientId: string, remoteAddress = '203.0.113.50'): Promise<{ status: number, body: string, location?: string }> {
  const res = await app.inject({ url: authorizeUrl('', { client_id: clientId }), remoteAddress })
  return { status: res.statusCode, body: res.body, location: res.headers.location as string | undefined }
}

// Each one names an internal host, written so that a check on the text alone misses it.
const BLOCKED: Array<[host: string, hidden: string]> = [
  ['10.0.0.1', '10.0.0.1'],
  ['169.254.169.254', '169.254.169.254'],
  ['100.64.0.1', '100.64.0.1'],
  ['198.18.0.1', '198.18.0.1'],
  ['0.0.0.0', '0.0.0.0'],
  ['255.255.255.255', '255.255.255.255'],
  ['224.0.0.1', '224.0.0.1'],
  ['[fd00::1]', 'fd00::1'],
  ['[fe80::1]', 'fe80::1'],
  ['[fec0::1]', 'fec0::1'],
  ['[ff02::1]', 'ff02::1'],
  ['[::]', '::'],
  ['[2001:db8::1]', '2001:db8::1'],
  ['[::ffff:7f00:1]', '127.0.0.1'], // IPv4-mapped loopback (also the URL form of [::ffff:127.0.0.1])
  ['[::ffff:a9fe:a9fe]', '169.254.169.254'], // IPv4-mapped metadata service
  ['[::7f00:1]', '127.0.0.1'], // IPv4-compatible, the URL form of [::127.0.0.1]
  ['[::ffff:0:a00:1]', '10.0.0.1'], // IPv4-translated
  ['[64:ff9b::7f00:1]', '127.0.0.1'], // NAT64 well-known prefix
  ['[64:ff9b::a9fe:a9fe]', '169.254.169.254'],
  ['[64:ff9b:1::a00:1]', '64:ff9b:1::a00:1'], // local-use NAT64: refused outright
  ['[2002:a00:1::1]', '10.0.0.1'], // 6to4
  ['[2001:0:4136:e378:8000:63bf:3fff:fdd2]', '2001:0:4136'] // Teredo
]

t.test('a client_id on an internal address gets one generic page, and the reason goes to the log only', async t => {
  const logLines: string[] = []
  // CIMD_ALLOW_LOOPBACK admits IP-literal hosts, so each address reaches the address rules.
  const app = await buildGateway(t, { config, env: { CIMD_ALLOW_LOOPBACK: 'true' }, logLines })
  for (const [i, [host, hidden]] of BLOCKED.entries()) {
    const clientId = `https://${host}/client.json`
    // From an address each, so the per-address fetch cap stays out of the way.
    const page = await authorize(app, clientId, `203.0.113.${i + 1}`)
    t.equal(page.status, 400, clientId)
    t.equal(page.location, undefined, 'never a redirect')
    t.equal(pageMessage(page.body), GENERIC, `${clientId}: the generic sentence`)
    // What the page says, without its style sheet and random nonces.
    const text = page.body.replace(/<style[^>]*>[\s\S]*?<\/style>/g, '').replace(/nonce="[^"]*"/g, '')
    t.notOk(text.includes(hidden), `${clientId}: the page does not name ${hidden}`)
    t.notMatch(text, /private|reserved|loopback|mapped|NAT64|\bE(CONN|HOST|NET|AI_|NOTFOUND)/, `${clientId}: nor why`)
    t.ok(logLines.some(l => l.includes('client metadata document refused') && l.includes(clientId) && l.includes(hidden)), `${clientId}: the log says why`)
  }

  const token = await app.inject({
    method: 'POST',
    url: '/oauth/token',
    payload: { grant_type: 'authorization_code', client_id: 'https://[::ffff:a9fe:a9fe]/client.json', code: 'x', redirect_uri: REDIRECT, code_verifier: VERIFIER }
  })
  t.equal(token.statusCode, 401, 'the token endpoint refuses the client too')
  t.same(token.json(), { error: 'invalid_client', error_description: GENERIC }, 'in OAuth JSON, as generic')
})

t.test('a client_id that cannot be a document URL is refused before any lookup, on a page', async t => {
  const logLines: string[] = []
  const app = await buildGateway(t, { config, logLines })
  for (const [clientId, why] of [
    ['https://127.0.0.1/client.json', /not an IP address/],
    ['https://[::1]/client.json', /not an IP address/],
    ['https://metadata/computeMetadata/v1/', /fully qualified host/],
    ['https://metadata.google.internal/computeMetadata/v1/', /public host/],
    ['https://redis.default.svc.cluster.local/client.json', /public host/],
    ['https://localhost/client.json', /public host/],
    ['http://app.example.com/client.json', /https URL/],
    ['https://user@app.example.com/client.json', /credentials/],
    ['https://app.example.com/client.json#frag', /fragment/],
    ['https://app.example.com/', /path/],
    [`https://app.example.com/${'a'.repeat(3000)}`, /longer than/]
  ] as const) {
    const label = clientId.slice(0, 60)
    const page = await authorize(app, clientId)
    t.equal(page.status, 400, label)
    t.equal(page.location, undefined, 'never a redirect')
    t.match(pageMessage(page.body), why, label)
    t.notMatch(page.body, /resolve|ENOTFOUND|EAI_AGAIN/, 'no DNS answer was sought')
  }
})

/** Metadata documents on loopback, counting requests; `hold` keeps answers back until released. */
async function documentServer (t: { teardown: (fn: () => unknown) => void }): Promise<{ origin: string, hits: () => number, hold: () => () => void }> {
  let count = 0
  let held: Array<() => void> | undefined
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(JSON.stringify({ client_id: `http://${req.headers.host}${req.url}`, client_name: 'Flood', redirect_uris: [REDIRECT] }))
  }
  const server = createServer((req, res) => {
    count++
    if (held !== undefined) held.push(() => answer(req, res))
    else answer(req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => count,
    hold: () => {
      held = []
      return () => { const waiting = held ?? []; held = undefined; for (const go of waiting) go() }
    }
  }
}

async function until (condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
}

t.test('a flood of new client ids from one address: the document host sees no more than the cap', async t => {
  const { gateway } = await startAuthorizationServer(t, { config })
  const docs = await documentServer(t)
  const statuses: number[] = []
  // Just past the cap: the flood is the new documents, not the request rate (limited elsewhere).
  for (let i = 0; i < 15; i++) {
    const page = await authorize(gateway, `${docs.origin}/flood/${i}.json`, '198.51.100.7')
    statuses.push(page.status)
    if (page.status === 429) t.match(page.body, /Too many client metadata documents/)
  }
  t.ok(docs.hits() >= 1 && docs.hits() <= 10, `the document host got ${docs.hits()} requests (cap 10)`)
  t.equal(statuses.filter(s => s === 200).length, docs.hits(), 'each fetched document showed a consent page')
  t.equal(statuses.filter(s => s === 429).length, 15 - docs.hits(), 'the rest got 429 pages, unfetched')

  const other = await authorize(gateway, `${docs.origin}/flood/other.json`, '198.51.100.8')
  t.equal(other.status, 200, 'another address is not held back')
  // IPv6 clients own whole /64s: the cap is per /64, not per address.
  for (let i = 0; i < 12; i++) await authorize(gateway, `${docs.origin}/v6/${i}.json`, `2001:db8:1:2::${i + 1}`)
  t.equal(docs.hits(), statuses.filter(s => s === 200).length + 1 + 10, 'one /64 got at most the cap')
})

t.test('the per-address cap holds across two replicas sharing Redis', async t => {
  const redis = await startRedis(t)
  const setup = await startAuthorizationServer(t, { config, env: { REDIS_URL: redis.url } })
  const replica = await startReplica(t, setup, config)
  const docs = await documentServer(t)
  const statuses: number[] = []
  for (let i = 0; i < 14; i++) {
    const page = await authorize(i % 2 === 0 ? setup.gateway : replica.gateway, `${docs.origin}/replicas/${i}.json`, '198.51.100.20')
    statuses.push(page.status)
  }
  t.ok(docs.hits() >= 1 && docs.hits() <= 10, `the document host got ${docs.hits()} requests from both replicas (cap 10)`)
  t.equal(statuses.filter(s => s === 429).length, 14 - docs.hits(), 'the rest got 429 pages')
})

t.test('many addresses at once: no more than 16 fetches run together', async t => {
  const { gateway } = await startAuthorizationServer(t, { config })
  const docs = await documentServer(t)
  const release = docs.hold()
  const refused: number[] = []
  const pages = Array.from({ length: 24 }, async (_, i) => {
    const page = await authorize(gateway, `${docs.origin}/wide/${i}.json`, `192.0.2.${i + 1}`)
    if (page.status === 429) refused.push(i)
    return page
  })
  await until(() => docs.hits() + refused.length === 24 || docs.hits() > 16)
  t.ok(docs.hits() <= 16, `${docs.hits()} fetches ran at once (cap 16)`)
  t.equal(refused.length, 24 - docs.hits(), 'the others were refused with 429 at once')
  release()
  const done = await Promise.all(pages)
  t.equal(done.filter(p => p.status === 200).length, docs.hits(), 'the running ones complete')
})

t.test('a burst of one client id is fetched once, and the joiners are not charged to the cap', async t => {
  const { gateway } = await startAuthorizationServer(t, { config })
  const docs = await documentServer(t)
  const release = docs.hold()
  // More than the per-address cap, all from one address.
  const pages = Array.from({ length: 12 }, async () => await authorize(gateway, `${docs.origin}/burst.json`, '198.51.100.9'))
  await until(() => docs.hits() > 0)
  // Time for every request of the burst to reach the lookup while the first fetch is held.
  await new Promise(resolve => setTimeout(resolve, 500))
  release()
  const done = await Promise.all(pages)
  t.equal(docs.hits(), 1, 'one fetch for the whole burst')
  t.same(done.map(p => p.status), done.map(() => 200), 'every request got its consent page')
})

t.test('the token endpoint answers a reached cap with 429 JSON', async t => {
  const { gateway } = await startAuthorizationServer(t, { config })
  const docs = await documentServer(t)
  const release = docs.hold()
  const busy = Array.from({ length: 16 }, async (_, i) => await authorize(gateway, `${docs.origin}/busy/${i}.json`, `192.0.2.${i + 100}`))
  await until(() => docs.hits() === 16)
  const res = await gateway.inject({
    method: 'POST',
    url: '/oauth/token',
    payload: { grant_type: 'authorization_code', client_id: `${docs.origin}/busy/token.json`, code: 'x', redirect_uri: REDIRECT, code_verifier: VERIFIER }
  })
  t.equal(res.statusCode, 429)
  t.equal(res.json().error, 'temporarily_unavailable')
  t.ok(res.headers['retry-after'], 'with Retry-After')
  t.equal(docs.hits(), 16, 'and no fetch')
  release()
  await Promise.all(busy)
})
