import t from 'tap'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { startMcpUpstream } from '../fixtures/mcp-upstream.js'
import { TestBrowser } from '../fixtures/browser.js'
import { TestOAuthClient } from '../fixtures/oauth-client.js'
import { REDIRECT, mcpClient, startAuthorizationServer, startLogin, textOf } from '../fixtures/authorization.js'
import { sleep, startRedis } from '../helper.js'

// What the authorization server keeps in Redis must outlive a Redis crash when Redis persists
// with AOF: registrations, refresh token families and consents, for every client.

const CLIENTS = 3

t.test('Redis restarted with AOF persistence: registered clients, refresh tokens and consents survive', async t => {
  const redis = await startRedis(t, { appendonly: true })
  const upstream = await startMcpUpstream()
  t.teardown(async () => await upstream.close())
  const { base, idp } = await startAuthorizationServer(t, { config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] }, env: { REDIS_URL: redis.url } })
  const url = `${base}/calc/mcp`

  // One person (one browser, one gateway session) logs several MCP clients in.
  const browser = new TestBrowser()
  const clients: TestOAuthClient[] = []
  for (let i = 0; i < CLIENTS; i++) {
    const client = new TestOAuthClient(REDIRECT, { name: `AOF client ${i}` })
    const transport = await startLogin(url, client)
    await transport.finishAuth((await browser.authorize((client.authorizationUrl as URL).href, REDIRECT)).searchParams.get('code') as string)
    t.ok(client.tokens()?.refresh_token, `client ${i} holds a refresh token`)
    clients.push(client)
  }
  t.equal(idp.logins(), 1, 'one provider login for all')

  const down = performance.now()
  await redis.kill()
  await redis.start()
  let ready = false
  for (let i = 0; i < 100 && !ready; i++) {
    ready = (await fetch(`${base}/readyz`)).ok
    if (!ready) await sleep(100)
  }
  t.ok(ready, 'ready again once Redis has replayed its AOF')
  const outage = performance.now() - down

  const survived = { refreshed: 0, registered: 0, consented: 0 }
  for (const [i, client] of clients.entries()) {
    const before = client.tokens()
    // auth() falls back to a new authorization ('REDIRECT') when the refresh token is refused.
    if (await auth(client, { serverUrl: url }) === 'AUTHORIZED' && client.tokens()?.refresh_token !== before?.refresh_token) survived.refreshed++
    const mcp = await mcpClient(t, url, client)
    t.equal(textOf(await mcp.callTool({ name: 'add', arguments: { a: i, b: 1 } })), String(i + 1), `client ${i} calls a tool with the refreshed token`)

    // The same registration authorizes again, and the browser goes straight back with a code.
    const returning = new TestOAuthClient(REDIRECT)
    returning.saveClientInformation(client.clientInformation() as { client_id: string })
    const transport = await startLogin(url, returning)
    const hop = await browser.follow(await browser.request((returning.authorizationUrl as URL).href), u => u.startsWith(REDIRECT))
    const code = hop.location === undefined ? null : new URL(hop.location).searchParams.get('code')
    if (code !== null) {
      survived.consented++
      // The code is redeemed by the registered client: its registration is still there.
      await transport.finishAuth(code)
      if (returning.tokens()?.access_token !== undefined) survived.registered++
    }
  }
  t.comment(`AOF restart: Redis away and replayed in ${outage.toFixed(0)} ms; of ${CLIENTS} clients: refresh tokens refreshed ${survived.refreshed}, consents remembered ${survived.consented}, registrations still redeeming codes ${survived.registered}; lost ${CLIENTS * 3 - survived.refreshed - survived.consented - survived.registered}`)
  t.same(survived, { refreshed: CLIENTS, registered: CLIENTS, consented: CLIENTS }, 'nothing lost')
  t.equal(idp.logins(), 1, 'the gateway session survived too: no second provider login')
})
