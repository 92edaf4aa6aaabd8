import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { startRedis, type RedisServer } from './helper.js'
import { startMcpUpstream, type McpUpstream } from './fixtures/mcp-upstream.js'
import { TestBrowser } from './fixtures/browser.js'
import { TestOAuthClient } from './fixtures/oauth-client.js'
import { mcpClient, startAuthorizationServer, startLogin, startReplica, textOf } from './fixtures/authorization.js'

const REDIRECT = 'http://127.0.0.1:7/callback'

let upstream: McpUpstream
let redis: RedisServer
const config = (): unknown => ({
  proxies: [
    { pattern: '/calc/mcp', target_url: upstream.url },
    { pattern: '/files/mcp', target_url: upstream.url },
    // `add` needs a scope the route's token does not carry at first: step-up.
    { pattern: '/tools/mcp', target_url: upstream.url, tools: { required_scopes: { add: ['calc.add'] } } }
  ]
})

t.before(async () => {
  upstream = await startMcpUpstream()
  redis = await startRedis(t)
})
t.teardown(async () => await upstream.close())

t.test('the MCP SDK client logs in through DCR, consent and the provider, calls a tool, refreshes and calls again', async t => {
  const { base, idp } = await startAuthorizationServer(t, { config: config(), env: { REDIS_URL: redis.url } })
  const url = `${base}/calc/mcp`
  const provider = new TestOAuthClient(REDIRECT)
  const transport = await startLogin(url, provider)
  t.ok(provider.clientInformation()?.client_id, 'registered dynamically')
  const authorizationUrl = provider.authorizationUrl as URL
  t.equal(authorizationUrl.origin + authorizationUrl.pathname, `${base}/oauth/authorize`)
  t.equal(authorizationUrl.searchParams.get('resource'), url)

  const browser = new TestBrowser()
  const back = await browser.authorize(authorizationUrl.href, REDIRECT)
  t.equal(back.searchParams.get('iss'), base, 'RFC 9207 iss')
  t.equal(back.searchParams.get('state'), authorizationUrl.searchParams.get('state'), 'state unchanged')
  t.equal(idp.logins(), 1)
  await transport.finishAuth(back.searchParams.get('code') as string)
  const first = provider.tokens()
  t.ok(first?.refresh_token, 'a refresh token')

  const client = await mcpClient(t, url, provider)
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })), '5')

  t.equal(await auth(provider, { serverUrl: url }), 'AUTHORIZED')
  const second = provider.tokens()
  t.not(second?.access_token, first?.access_token, 'a new access token')
  t.not(second?.refresh_token, first?.refresh_token, 'the refresh token rotated')
  const again = await mcpClient(t, url, provider)
  t.equal(textOf(await again.callTool({ name: 'add', arguments: { a: 20, b: 22 } })), '42')

  // The browser now has a gateway session and an approval: the next login goes straight through.
  const returning = new TestOAuthClient(REDIRECT)
  returning.saveClientInformation(provider.clientInformation() as { client_id: string })
  await startLogin(url, returning)
  const straight = await browser.follow(await browser.request((returning.authorizationUrl as URL).href), u => u.startsWith(REDIRECT))
  t.match(straight.location, /^http:\/\/127\.0\.0\.1:7\/callback\?code=/, 'no consent page, no provider login')
  t.equal(idp.logins(), 1)
})

t.test('a client identified by a metadata document served on loopback logs in without registering', async t => {
  const documents = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({
      client_id: `http://127.0.0.1:${(documents.address() as AddressInfo).port}/client.json`,
      client_name: 'Metadata document client',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none'
    }))
  })
  await new Promise<void>(resolve => documents.listen(0, '127.0.0.1', resolve))
  t.teardown(() => documents.close())
  const clientId = `http://127.0.0.1:${(documents.address() as AddressInfo).port}/client.json`

  const { base } = await startAuthorizationServer(t, { config: config(), env: { REDIS_URL: redis.url } })
  const url = `${base}/files/mcp`
  const provider = new TestOAuthClient(REDIRECT, { clientId })
  const transport = await startLogin(url, provider)
  t.equal(provider.clientInformation()?.client_id, clientId, 'no registration happened')
  const browser = new TestBrowser()
  const page = await browser.request((provider.authorizationUrl as URL).href)
  t.match(page.body, /Metadata document client/, 'the consent page names the client from its document')
  const back = await browser.authorize((provider.authorizationUrl as URL).href, REDIRECT)
  await transport.finishAuth(back.searchParams.get('code') as string)
  const client = await mcpClient(t, url, provider)
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), '2')
  t.equal(await auth(provider, { serverUrl: url }), 'AUTHORIZED', 'refreshes too')
})

t.test('a login started on one replica finishes on another sharing the Redis', async t => {
  const setup = await startAuthorizationServer(t, { config: config(), env: { REDIS_URL: redis.url } })
  const replica = await startReplica(t, setup, config())
  const url = `${setup.base}/calc/mcp`
  const provider = new TestOAuthClient(REDIRECT)
  const transport = await startLogin(url, provider)

  const browser = new TestBrowser()
  const consent = await browser.request((provider.authorizationUrl as URL).href)
  // From here on the load balancer sends the browser to the other replica.
  browser.route = target => target.origin === setup.base ? new URL(target.pathname + target.search, replica.origin) : target
  const back = new URL((await browser.follow(await browser.submitConsent(consent, 'approve'), u => u.startsWith(REDIRECT))).location as string)
  t.ok(back.searchParams.get('code'))
  await transport.finishAuth(back.searchParams.get('code') as string)

  const onReplica = new Client({ name: 'oauth-test', version: '1.0.0' })
  const headers = { authorization: `Bearer ${provider.tokens()?.access_token as string}` }
  await onReplica.connect(new StreamableHTTPClientTransport(new URL(`${replica.origin}/calc/mcp`), { requestInit: { headers } }))
  t.teardown(async () => await onReplica.close())
  t.equal(textOf(await onReplica.callTool({ name: 'add', arguments: { a: 3, b: 4 } })), '7')
})

t.test('step-up: a tool that needs another scope sends the client back for the difference only', async t => {
  const { base, idp } = await startAuthorizationServer(t, { config: config(), env: { REDIS_URL: redis.url } })
  const url = `${base}/tools/mcp`
  const meta = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json() as { scopes_supported: string[] }
  t.ok(meta.scopes_supported.includes('calc.add'), 'the tool scope is advertised')
  const provider = new TestOAuthClient(REDIRECT)
  const transport = await startLogin(url, provider)
  const browser = new TestBrowser()
  await transport.finishAuth((await browser.authorize((provider.authorizationUrl as URL).href, REDIRECT)).searchParams.get('code') as string)
  t.equal(provider.tokens()?.scope, 'mcp', 'the route\'s own scope by default')

  const client = await mcpClient(t, url, provider)
  await t.rejects(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }), /403/, 'refused without calc.add')
  // The SDK answers the 403 with a refresh, which cannot widen a grant (RFC 6749 §6); the
  // client then authorizes again with the scope of the challenge.
  provider.saved = undefined
  provider.authorizationUrl = undefined
  t.equal(await auth(provider, { serverUrl: url, scope: 'mcp calc.add' }), 'REDIRECT')
  const stepUp = provider.authorizationUrl as URL | undefined
  t.match(stepUp?.searchParams.get('scope'), /calc\.add/)
  const page = await browser.request((stepUp as URL).href)
  t.match(page.body, /New permissions requested<\/dt>\n<dd><code>calc\.add<\/code><\/dd>\n<dt>Already allowed<\/dt>\n<dd><code>mcp<\/code>/)
  const back = new URL((await browser.follow(await browser.submitConsent(page, 'approve'), u => u.startsWith(REDIRECT))).location as string)
  t.equal(idp.logins(), 1, 'the gateway session spares a second provider login')
  t.equal(await auth(provider, { serverUrl: url, authorizationCode: back.searchParams.get('code') as string }), 'AUTHORIZED')
  t.match(provider.tokens()?.scope, /calc\.add/)
  const upgraded = await mcpClient(t, url, provider)
  t.equal(textOf(await upgraded.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3')
})
