// Issue 9, medium: a user the operator removed from an allow-list must not keep access by
// refreshing. Each attack logs in, is removed (a replica restarted with the new configuration,
// over the same Redis) and refreshes there; the family must be gone for good.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildGateway, sleep, startRedis } from '../helper.js'
import { startMcpUpstream, type McpUpstream } from '../fixtures/mcp-upstream.js'
import { TestBrowser } from '../fixtures/browser.js'
import {
  REDIRECT, VERIFIER, authorizeUrl, registerClient, startAuthorizationServer, tokenRequest, type AuthorizationSetup
} from '../fixtures/authorization.js'

let upstream: McpUpstream
let setup: AuthorizationSetup
let clientId: string

const routes = (teamEmails: string[]): unknown => ({
  proxies: [
    { pattern: '/calc/mcp', target_url: upstream.url },
    { pattern: '/team/mcp', target_url: upstream.url, allowed_emails: teamEmails }
  ]
})

t.before(async () => {
  upstream = await startMcpUpstream()
  const redis = await startRedis(t)
  setup = await startAuthorizationServer(t, {
    config: routes(['ana@example.com', 'bob@example.com']),
    env: { REDIS_URL: redis.url, ALLOWED_EMAILS: 'ana@example.com,bob@example.com' }
  })
  clientId = (await registerClient(setup.base)).body.client_id as string
})
t.teardown(async () => await upstream.close())

interface Tokens { access_token: string, refresh_token: string }

/** Logs `email` in through the browser flow and redeems the code at the first replica. */
async function login (email: string, pattern: string): Promise<Tokens> {
  setup.idp.loginAs({ email })
  const back = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}${pattern}` }), REDIRECT)
  const redeemed = await tokenRequest(setup.base, {
    grant_type: 'authorization_code', code: back.searchParams.get('code') as string, redirect_uri: REDIRECT, code_verifier: VERIFIER, client_id: clientId
  })
  t.equal(redeemed.status, 200, `${email} logs in`)
  return redeemed.body as unknown as Tokens
}

/** A replica restarted with other settings: same BASE_URL and Redis, new env and config.yaml. */
async function restartedReplica (t: Parameters<typeof buildGateway>[0], env: Record<string, string>, config: unknown): Promise<FastifyInstance> {
  return await buildGateway(t, { env: { ...setup.env, ...env }, config })
}

async function refreshAt (app: FastifyInstance, refreshToken: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await app.inject({
    method: 'POST',
    url: '/oauth/token',
    payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  return { status: res.statusCode, body: res.json() }
}

async function refreshAtFirst (refreshToken: string): Promise<{ status: number, body: Record<string, unknown> }> {
  return await tokenRequest(setup.base, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId })
}

/** The status of an MCP initialize with this token at the first replica. */
async function mcpStatus (accessToken: string, pattern: string): Promise<number> {
  const res = await fetch(`${setup.base}${pattern}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  })
  await res.text()
  return res.status
}

/** Revocations travel by pub/sub: wait (bounded) until the first replica refuses the token. */
async function refusedAtFirst (accessToken: string, pattern: string): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (await mcpStatus(accessToken, pattern) === 401) return true
    await sleep(50)
  }
  return false
}

t.test('removed from ALLOWED_EMAILS: the refresh is invalid_grant and the family is revoked for good', async t => {
  const ana = await login('ana@example.com', '/calc/mcp')
  const bob = await login('bob@example.com', '/calc/mcp')
  const restarted = await restartedReplica(t, { ALLOWED_EMAILS: 'bob@example.com' }, routes(['ana@example.com', 'bob@example.com']))

  const kept = await refreshAt(restarted, bob.refresh_token)
  t.equal(kept.status, 200, 'a user still on the list refreshes on the restarted replica')

  const refused = await refreshAt(restarted, ana.refresh_token)
  t.equal(refused.status, 400)
  t.equal(refused.body.error, 'invalid_grant')
  t.notOk(refused.body.access_token)

  const revived = await refreshAtFirst(ana.refresh_token)
  t.equal(revived.body.error, 'invalid_grant', 'a replica whose config still admits her does not revive the family')
  t.ok(await refusedAtFirst(ana.access_token, '/calc/mcp'), 'the family\'s access token is revoked too')
  t.equal(await mcpStatus(kept.body.access_token as string, '/calc/mcp'), 200, 'the kept user\'s new token works')
})

t.test('removed from the route\'s allowed_emails: same, while her other route keeps working', async t => {
  const team = await login('ana@example.com', '/team/mcp')
  const calc = await login('ana@example.com', '/calc/mcp')
  const restarted = await restartedReplica(t, {}, routes(['bob@example.com']))

  const refused = await refreshAt(restarted, team.refresh_token)
  t.equal(refused.status, 400)
  t.equal(refused.body.error, 'invalid_grant')
  t.equal((await refreshAtFirst(team.refresh_token)).body.error, 'invalid_grant', 'the old config does not revive it')
  t.ok(await refusedAtFirst(team.access_token, '/team/mcp'), 'the family\'s access token is revoked too')

  const other = await refreshAt(restarted, calc.refresh_token)
  t.equal(other.status, 200, 'the route without the change still refreshes')
})

t.test('a route no longer served refuses the refresh', async t => {
  const team = await login('ana@example.com', '/team/mcp')
  const restarted = await restartedReplica(t, {}, { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url }] })
  const refused = await refreshAt(restarted, team.refresh_token)
  t.equal(refused.status, 400)
  t.equal(refused.body.error, 'invalid_grant')
})
