import t from 'tap'
import { sleep, startRedis } from './helper.js'
import { startMcpUpstream, type McpUpstream } from './fixtures/mcp-upstream.js'
import { TestBrowser } from './fixtures/browser.js'
import {
  REDIRECT, VERIFIER, authorizeUrl, registerClient, startAuthorizationServer, startReplica, tokenRequest,
  type AuthorizationSetup, type TokenAnswer
} from './fixtures/authorization.js'

const GRACE_MS = 300
let upstream: McpUpstream
let setup: AuthorizationSetup
let replica: string
let clientId: string

t.before(async () => {
  upstream = await startMcpUpstream()
  const redis = await startRedis(t)
  const config = { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }, { pattern: '/files/mcp', target_url: upstream.url }, { pattern: '/admin/mcp', target_url: upstream.url, scopes: ['admin'] }] }
  setup = await startAuthorizationServer(t, { config, env: { REDIS_URL: redis.url, REFRESH_GRACE_MS: String(GRACE_MS) } })
  replica = (await startReplica(t, setup, config)).origin
  clientId = (await registerClient(setup.base)).body.client_id as string
})
t.teardown(async () => await upstream.close())

const calc = (): string => `${setup.base}/calc/mcp`

async function codeFor (client = clientId, resource = calc()): Promise<string> {
  const back = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: client, resource }), REDIRECT)
  return back.searchParams.get('code') as string
}

async function redeem (code: string, extra: Record<string, string> = {}, base = setup.base): Promise<TokenAnswer> {
  return await tokenRequest(base, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: clientId, ...extra })
}

async function refresh (refreshToken: string, extra: Record<string, string> = {}, base = setup.base): Promise<TokenAnswer> {
  return await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, ...extra })
}

/** The status an MCP initialize gets with this token, on the given gateway replica. */
async function mcpStatus (accessToken: unknown, origin = setup.base, pattern = '/calc/mcp'): Promise<number> {
  const res = await fetch(`${origin}${pattern}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${String(accessToken)}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  await res.text()
  return res.status
}

/** Revocation travels by pub/sub: wait (bounded) until the replica refuses the token. */
async function refusedOn (origin: string, accessToken: unknown): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (await mcpStatus(accessToken, origin) === 401) return true
    await sleep(50)
  }
  return false
}

t.test('a code redeems once with the right verifier, redirect URI and resource; answers are never cached', async t => {
  const ok = await redeem(await codeFor(), { resource: `${calc()}/` })
  t.equal(ok.status, 200)
  t.equal(ok.headers.get('cache-control'), 'no-store')
  t.match(ok.body, { token_type: 'Bearer', scope: 'mcp', access_token: String, refresh_token: String })
  t.equal(await mcpStatus(ok.body.access_token), 200)
  t.equal(await mcpStatus(ok.body.access_token, setup.base, '/files/mcp'), 401, 'a token for another route is refused')

  const wrongVerifier = await redeem(await codeFor(), { code_verifier: 'w'.repeat(43) })
  t.equal(wrongVerifier.status, 400)
  t.equal(wrongVerifier.body.error, 'invalid_grant')
  t.equal(wrongVerifier.headers.get('cache-control'), 'no-store')
  t.equal((await redeem(await codeFor(), { code_verifier: '' })).body.error, 'invalid_request', 'missing verifier')
  t.equal((await redeem(await codeFor(), { redirect_uri: 'http://127.0.0.1:7/other' })).body.error, 'invalid_grant')
  t.equal((await redeem(await codeFor(), { resource: `${setup.base}/files/mcp` })).body.error, 'invalid_target')
  t.equal((await redeem('made-up-code')).body.error, 'invalid_grant')
  t.equal((await tokenRequest(setup.base, { grant_type: 'password', client_id: clientId })).body.error, 'unsupported_grant_type')
  const unknown = await redeem(await codeFor(), { client_id: 'nobody' })
  t.equal(unknown.status, 401)
  t.equal(unknown.body.error, 'invalid_client')
})

t.test('a replayed code fails and revokes everything it issued, on every replica', async t => {
  const code = await codeFor()
  const first = await redeem(code)
  t.equal(first.status, 200)
  const replay = await redeem(code, {}, replica)
  t.equal(replay.status, 400)
  t.equal(replay.body.error, 'invalid_grant')
  t.ok(await refusedOn(setup.base, first.body.access_token), 'access token revoked here')
  t.ok(await refusedOn(replica, first.body.access_token), 'and on the other replica')
  t.equal((await refresh(first.body.refresh_token as string)).body.error, 'invalid_grant', 'refresh token revoked')
})

t.test('refresh rotates; scope and resource may narrow, never widen', async t => {
  const first = await redeem(await codeFor())
  t.equal((await refresh(first.body.refresh_token as string, { scope: 'mcp admin' })).body.error, 'invalid_scope', 'a gateway scope beyond the grant')
  t.equal((await refresh(first.body.refresh_token as string, { resource: `${setup.base}/files/mcp` })).body.error, 'invalid_target')
  const next = await refresh(first.body.refresh_token as string, { scope: 'mcp', resource: calc() })
  t.equal(next.status, 200)
  t.not(next.body.refresh_token, first.body.refresh_token)
  t.equal(await mcpStatus(next.body.access_token), 200)
  const legacy = await tokenRequest(setup.base, { grant_type: 'refresh_token', refresh_token: next.body.refresh_token as string, client_id: clientId }, {}, '/token')
  t.equal(legacy.status, 200, 'legacy /token')
})

t.test('scope=mcp offline_access (and openid) as CLIs send it: registered, authorized, a refresh token, scope says what was granted', async t => {
  const registered = await registerClient(setup.base, { scope: 'mcp offline_access' })
  t.equal(registered.status, 201, 'accepted at registration')
  const client = registered.body.client_id as string
  const url = authorizeUrl(setup.base, { client_id: client, resource: calc(), scope: 'openid mcp offline_access' })
  const code = (await new TestBrowser().authorize(url, REDIRECT)).searchParams.get('code') as string
  t.ok(code, 'accepted at authorize')
  const tokens = await redeem(code, { client_id: client })
  t.equal(tokens.status, 200)
  t.equal(tokens.body.scope, 'mcp', 'openid and offline_access left out of the grant')
  t.type(tokens.body.refresh_token, 'string')
  const refreshed = await refresh(tokens.body.refresh_token as string, { client_id: client, scope: 'mcp offline_access' })
  t.equal(refreshed.status, 200, 'accepted at the token endpoint')
  t.equal(refreshed.body.scope, 'mcp')
  t.equal(await mcpStatus(refreshed.body.access_token), 200)
  const older = await redeem(await codeFor())
  t.type(older.body.refresh_token, 'string', 'a client that never asks for offline_access still gets a refresh token')
})

t.test('concurrent refreshes on two replicas inside the grace window get the same new pair', async t => {
  const first = await redeem(await codeFor())
  const [a, b] = await Promise.all([refresh(first.body.refresh_token as string), refresh(first.body.refresh_token as string, {}, replica)])
  t.equal(a.status, 200)
  t.equal(b.status, 200)
  t.same(a.body, b.body, 'one rotation, answered twice')
  t.equal((await refresh(a.body.refresh_token as string)).status, 200, 'the new refresh token is live')
})

t.test('reusing a rotated refresh token after the grace window revokes the whole family', async t => {
  const first = await redeem(await codeFor())
  const second = await refresh(first.body.refresh_token as string)
  await sleep(GRACE_MS + 100)
  // Two late duplicates at once, on two replicas: neither gets tokens.
  const late = await Promise.all([refresh(first.body.refresh_token as string, {}, replica), refresh(first.body.refresh_token as string)])
  for (const reuse of late) {
    t.equal(reuse.status, 400)
    t.equal(reuse.body.error, 'invalid_grant')
  }
  t.equal((await refresh(second.body.refresh_token as string)).body.error, 'invalid_grant', 'the live refresh token went with it')
  t.ok(await refusedOn(replica, second.body.access_token), 'and the family\'s access tokens')
  t.ok(await refusedOn(setup.base, first.body.access_token))
})

t.test('revocation: an access token revoked on one replica is refused by the other; a refresh token takes its family', async t => {
  const issued = await redeem(await codeFor())
  t.equal(await mcpStatus(issued.body.access_token, replica), 200)
  const revoked = await tokenRequest(setup.base, { token: issued.body.access_token as string, client_id: clientId }, {}, '/oauth/revoke')
  t.equal(revoked.status, 200)
  t.ok(await refusedOn(replica, issued.body.access_token))
  const unknown = await tokenRequest(setup.base, { token: 'not-a-token', client_id: clientId }, {}, '/oauth/revoke')
  t.equal(unknown.status, 200, 'unknown tokens are answered 200')

  const other = await redeem(await codeFor())
  await tokenRequest(replica, { token: other.body.refresh_token as string, token_type_hint: 'refresh_token', client_id: clientId }, {}, '/oauth/revoke')
  t.equal((await refresh(other.body.refresh_token as string)).body.error, 'invalid_grant')
  t.ok(await refusedOn(setup.base, other.body.access_token))
})

t.test('introspection answers confidential clients only, about their own tokens', async t => {
  const registered = await registerClient(setup.base, { token_endpoint_auth_method: 'client_secret_basic' })
  const id = registered.body.client_id as string
  const basic = { authorization: `Basic ${Buffer.from(`${id}:${registered.body.client_secret as string}`).toString('base64')}` }
  const back = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: id, resource: calc() }), REDIRECT)
  const issued = await tokenRequest(setup.base, { grant_type: 'authorization_code', code: back.searchParams.get('code') as string, redirect_uri: REDIRECT, code_verifier: VERIFIER }, basic)
  t.equal(issued.status, 200)

  const active = await tokenRequest(setup.base, { token: issued.body.access_token as string }, basic, '/oauth/introspect')
  t.match(active.body, { active: true, client_id: id, aud: calc(), scope: 'mcp', sub: String, email: 'ana@example.com' })
  const publicClient = await tokenRequest(setup.base, { token: issued.body.access_token as string, client_id: clientId }, {}, '/oauth/introspect')
  t.equal(publicClient.status, 401)
  t.equal(publicClient.body.error, 'invalid_client')
  const wrongSecret = await tokenRequest(setup.base, { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token as string }, { authorization: `Basic ${Buffer.from(`${id}:nope`).toString('base64')}` })
  t.equal(wrongSecret.status, 401)

  await tokenRequest(setup.base, { token: issued.body.access_token as string }, basic, '/oauth/revoke')
  t.same((await tokenRequest(setup.base, { token: issued.body.access_token as string }, basic, '/oauth/introspect')).body, { active: false })
})

t.test('a client the operator removes from allowed_clients loses the route at its next refresh, family and all', async t => {
  const first = await redeem(await codeFor())
  // The same gateway restarted with calc closed to every client but another one.
  const closed = { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url, allowed_clients: ['another-client'] }, { pattern: '/files/mcp', target_url: upstream.url }, { pattern: '/admin/mcp', target_url: upstream.url, scopes: ['admin'] }] }
  const restarted = (await startReplica(t, setup, closed)).origin
  const refused = await refresh(first.body.refresh_token as string, {}, restarted)
  t.equal(refused.status, 400)
  t.equal(refused.body.error, 'invalid_target')
  t.equal((await refresh(first.body.refresh_token as string)).body.error, 'invalid_grant', 'the family is revoked, not just refused there')
})
