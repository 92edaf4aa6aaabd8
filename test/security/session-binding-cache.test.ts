import t from 'tap'
import { buildGateway, mintToken } from '../helper.js'
import { startMcpUpstream } from '../fixtures/mcp-upstream.js'
import { SessionBinding } from '../../src/proxy/session-binding.js'

const ACCEPT = 'application/json, text/event-stream'
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }

async function post (url: string, token: string, body: unknown, session?: string): Promise<Response> {
  return await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT, ...(session === undefined ? {} : { 'mcp-session-id': session }) },
    body: JSON.stringify(body)
  })
}

// The gateway remembers session ids it has verified, so that a client's every request does not
// pay an HMAC. The attacks below run with that memory warm: the owner has just used the id.
t.test('a session id verified for its owner opens nothing for another user or on another route', async t => {
  const upstream = await startMcpUpstream()
  t.teardown(async () => await upstream.close())
  const gateway = await buildGateway(t, {
    listen: true,
    config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }, { pattern: '/files/mcp', target_url: upstream.url }] }
  })
  const base = gateway.config.env.BASE_URL
  const alice = mintToken(gateway, '/calc/mcp', { sub: 'alice' })
  const init = await post(`${base}/calc/mcp`, alice, INIT)
  await init.text()
  const session = init.headers.get('mcp-session-id') as string
  t.match(session, /\.[A-Za-z0-9_-]{22}$/, 'the client sees a bound id')
  for (let i = 0; i < 3; i++) {
    const own = await post(`${base}/calc/mcp`, alice, { jsonrpc: '2.0', id: i + 1, method: 'tools/list' }, session)
    await own.text()
    t.equal(own.status, 200, `the owner's request ${i + 1} passes`)
  }

  const mallory = await post(`${base}/calc/mcp`, mintToken(gateway, '/calc/mcp', { sub: 'mallory' }), { jsonrpc: '2.0', id: 9, method: 'tools/list' }, session)
  t.equal(mallory.status, 403, 'another user with the warm id is refused')
  t.match(await mallory.json(), { error: 'session_not_bound', route: '/calc/mcp' }, 'a session refusal, not OAuth access_denied')

  const elsewhere = await post(`${base}/files/mcp`, mintToken(gateway, '/files/mcp', { sub: 'alice' }), { jsonrpc: '2.0', id: 10, method: 'tools/list' }, session)
  t.equal(elsewhere.status, 403, 'the owner on another route is refused')

  const mac = session.slice(session.lastIndexOf('.') + 1)
  const tampered = `${session.slice(0, session.lastIndexOf('.') + 1)}${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`
  const forged = await post(`${base}/calc/mcp`, alice, { jsonrpc: '2.0', id: 11, method: 'tools/list' }, tampered)
  t.equal(forged.status, 403, 'one changed character of the MAC is refused for the owner too')
})

t.test('the memory of verified ids stays bounded and a value dropped from it is checked again', async t => {
  const binding = new SessionBinding(Buffer.alloc(32, 7), 2)
  const ids = ['a', 'b', 'c'].map(id => binding.wrap(id, '/r/mcp', 'alice'))
  t.same(ids.map(id => binding.unwrap(id, '/r/mcp', 'alice')), ['a', 'b', 'c'], 'each verifies for its owner')
  t.same(ids.map(id => binding.unwrap(id, '/r/mcp', 'bob')), [null, null, null], 'none for another subject, cached or not')
  t.equal(binding.unwrap(ids[0], '/other/mcp', 'alice'), null, 'none on another route')
})
