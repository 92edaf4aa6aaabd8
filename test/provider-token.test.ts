import t from 'tap'
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js'
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { sleep, startRedis } from './helper.js'
import { startMcpUpstream } from './fixtures/mcp-upstream.js'
import { TestBrowser } from './fixtures/browser.js'
import { TestOAuthClient } from './fixtures/oauth-client.js'
import { mcpClient, REDIRECT, startAuthorizationServer, startLogin, startReplica, textOf } from './fixtures/authorization.js'

// upstream_auth: provider_token — the upstream acts on the provider for the user, with the
// user's provider access token, refreshed by the gateway; the client never sees it.
t.test('the upstream gets the user\'s provider token, refreshed once for many concurrent calls on two replicas, and a revoked grant sends the client to authorize again', async t => {
  const upstream = await startMcpUpstream({ jsonResponse: true })
  t.teardown(upstream.close)
  const redis = await startRedis(t)
  const config = { proxies: [{ pattern: '/drive/mcp', target_url: upstream.url, upstream_auth: 'provider_token' }] }
  // Provider access tokens live 10 s; the gateway refreshes a third of that early (not 60 s,
  // which would make every token stale on arrival), so they go stale after ~6.7 s.
  const setup = await startAuthorizationServer(t, { config, env: { REDIS_URL: redis.url }, idp: { accessTokenTtl: 10 } })
  const { base, idp, gateway } = setup
  const url = `${base}/drive/mcp`

  const provider = new TestOAuthClient(REDIRECT)
  const transport = await startLogin(url, provider)
  const browser = new TestBrowser()
  const firstChallenge = (provider.authorizationUrl as URL).searchParams.get('code_challenge')
  const back = await browser.authorize((provider.authorizationUrl as URL).href, REDIRECT)
  await transport.finishAuth(back.searchParams.get('code') as string)
  const sub = gateway.tokens.verify(provider.tokens()?.access_token as string, url).sub
  const held = await gateway.upstreamTokens.get(sub)
  t.ok(held?.refresh_token, 'the gateway holds the provider refresh token, sealed')

  const seenBy = async (client: Awaited<ReturnType<typeof mcpClient>>): Promise<string> =>
    JSON.parse(textOf(await client.callTool({ name: 'headers', arguments: {} }))).authorization as string
  const client = await mcpClient(t, url, provider)
  t.equal(await seenBy(client), `Bearer ${held?.access_token}`, 'the upstream receives the provider access token')
  t.notMatch(JSON.stringify(provider.tokens()), held?.access_token as string, 'the client never sees it')

  // Stale now: many concurrent calls on two replicas, one refresh at the provider.
  const replica = await startReplica(t, setup, config)
  const other = await mcpClient(t, `${replica.origin}/drive/mcp`, provider)
  await sleep(7000)
  const seen = await Promise.all([...Array(3)].flatMap(() => [seenBy(client), seenBy(other)]))
  t.equal(idp.refreshes(), 1, 'exactly one refresh at the provider')
  await Promise.all([...Array(3)].flatMap(() => [seenBy(client), seenBy(other)]))
  t.equal(idp.refreshes(), 1, 'the token just obtained is not refreshed again')
  const refreshed = (await gateway.upstreamTokens.get(sub))?.access_token
  t.not(refreshed, held?.access_token, 'a new provider token')
  t.same(new Set(seen), new Set([`Bearer ${refreshed}`]), 'every call carried the refreshed token')

  // The user revokes the gateway's access at the provider: the next refresh is refused, the
  // grant dropped, and the SDK client is sent through authorization again.
  await idp.revokeGrants()
  await sleep(7000)
  const refused = await client.callTool({ name: 'headers', arguments: {} }).then(() => null, (err: Error) => err)
  t.type(refused, UnauthorizedError, 'the client must authorize again')
  t.equal(await gateway.upstreamTokens.get(sub), null, 'the dead grant is dropped')
  const again = new URL(provider.authorizationUrl as URL)
  t.not(again.searchParams.get('code_challenge'), firstChallenge, 'the SDK started a new authorization')
  const back2 = await browser.authorize(again.href, REDIRECT)
  await (client.transport as StreamableHTTPClientTransport).finishAuth(back2.searchParams.get('code') as string)
  const renewed = await mcpClient(t, url, provider)
  const fresh = (await gateway.upstreamTokens.get(sub))?.access_token
  t.not(fresh, refreshed, 'from the new sign-in')
  t.equal(await seenBy(renewed), `Bearer ${fresh}`, 'after logging in again the upstream gets the new provider token')
})

t.test('a provider outage is a 502, not a 401', async t => {
  const upstream = await startMcpUpstream({ jsonResponse: true })
  t.teardown(upstream.close)
  const config = { proxies: [{ pattern: '/drive/mcp', target_url: upstream.url, upstream_auth: 'provider_token' }] }
  // A 3 s token is stale a second before it expires.
  const { base, idp, gateway } = await startAuthorizationServer(t, { config, idp: { accessTokenTtl: 3 } })
  const url = `${base}/drive/mcp`
  const provider = new TestOAuthClient(REDIRECT)
  const transport = await startLogin(url, provider)
  const back = await new TestBrowser().authorize((provider.authorizationUrl as URL).href, REDIRECT)
  await transport.finishAuth(back.searchParams.get('code') as string)
  await sleep(2500)
  await idp.close()
  const res = await gateway.inject({
    method: 'POST',
    url: '/drive/mcp',
    headers: { authorization: `Bearer ${provider.tokens()?.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    payload: { jsonrpc: '2.0', id: 1, method: 'ping' }
  })
  t.equal(res.statusCode, 502)
  t.match(res.json(), { error: 'bad_gateway', route: '/drive/mcp', error_description: /identity provider could not refresh/ })
  t.ok(await gateway.upstreamTokens.get(gateway.tokens.verify(provider.tokens()?.access_token as string, url).sub), 'the grant is kept for when the provider is back')
})
