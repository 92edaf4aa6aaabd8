import t from 'tap'
import { decodeJwt, generateKeyPair, SignJWT } from 'jose'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { buildGateway, freePort } from './helper.js'
import { startMcpUpstream, type McpUpstream } from './fixtures/mcp-upstream.js'
import { textOf, tokenRequest } from './fixtures/authorization.js'
import { exchangeForIdJag, startEnterpriseIdp, type EnterpriseIdp } from './fixtures/enterprise-idp.js'

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const SECRET = 'agent-secret-of-some-length'
let upstream: McpUpstream
let idp: EnterpriseIdp
let base: string

t.before(async () => {
  upstream = await startMcpUpstream()
  idp = await startEnterpriseIdp({ clientId: 'agent', scope: 'mcp calc.stream', claims: { tenant: 'acme' } })
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  const config = {
    proxies: [
      { pattern: '/calc/mcp', target_url: upstream.url, allowed_domains: ['acme.example'], tools: { required_scopes: { progress: ['calc.stream', 'calc.admin'] } } },
      { pattern: '/files/mcp', target_url: upstream.url, allowed_clients: ['someone-else'] }
    ],
    clients: [
      { client_id: 'agent', grant_types: [JWT_BEARER], client_secret_env: 'AGENT_SECRET' },
      { client_id: 'other-agent', grant_types: [JWT_BEARER], client_secret_env: 'AGENT_SECRET' },
      { client_id: 'web-app', redirect_uris: ['http://127.0.0.1:7/callback'], client_secret_env: 'AGENT_SECRET' }
    ],
    trusted_idps: [{ issuer: idp.issuer, jwks_uri: idp.jwksUri, claims: { tenant: ['acme'] } }]
  }
  await buildGateway(t, { listen: true, port, env: { AGENT_SECRET: SECRET }, config })
})
t.teardown(async () => {
  await upstream.close()
  await idp.close()
})

const calc = (): string => `${base}/calc/mcp`
const basic = (id = 'agent'): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}` })
const ana = { sub: 'ana-123', email: 'ana@acme.example' }

async function idJagFor (user = ana, resource = calc()): Promise<string> {
  return await exchangeForIdJag(idp, await idp.idToken(user), base, resource)
}

async function present (assertion: string, extra: Record<string, string> = {}, client = 'agent'): ReturnType<typeof tokenRequest> {
  return await tokenRequest(base, { grant_type: JWT_BEARER, assertion, ...extra }, basic(client))
}

/** An ID-JAG as the IdP would sign it, with claims or header changed. */
async function forged (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await idp.sign({
    iss: idp.issuer,
    sub: ana.sub,
    email: ana.email,
    aud: base,
    resource: calc(),
    client_id: 'agent',
    tenant: 'acme',
    scope: 'mcp',
    iat: now,
    exp: now + 300,
    jti: crypto.randomUUID(),
    ...claims
  }, { typ: 'oauth-id-jag+jwt', ...header })
}

t.test('metadata advertises the jwt-bearer grant and the ID-JAG profile', async t => {
  const meta = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json() as Record<string, string[]>
  t.ok(meta.grant_types_supported.includes(JWT_BEARER))
  t.same(meta.authorization_grant_profiles_supported, ['urn:ietf:params:oauth:grant-profile:id-jag'])
})

t.test('ID token → ID-JAG by token exchange at the IdP → access token here → a tool call', async t => {
  const answer = await present(await idJagFor(), { scope: 'mcp calc.stream calc.admin openid' })
  t.equal(answer.status, 200)
  t.equal(answer.body.scope, 'mcp calc.stream', 'the intersection of what was asked and what the IdP approved')
  t.notOk(answer.body.refresh_token)
  const claims = decodeJwt(answer.body.access_token as string)
  t.equal(claims.aud, calc())
  t.equal(claims.client_id, 'agent')
  t.equal(claims.email, ana.email)
  t.equal(claims.sub, `${idp.issuer}#${ana.sub}`, 'the subject is namespaced by the IdP')

  const client = new Client({ name: 'enterprise-agent', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(calc()), { requestInit: { headers: { authorization: `Bearer ${String(answer.body.access_token)}` } } }))
  t.teardown(async () => await client.close())
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3')
})

t.test('no scope asked: what the IdP approved', async t => {
  t.equal((await present(await idJagFor())).body.scope, 'mcp calc.stream')
})

t.test('attacks: each check refuses', async t => {
  const other = (await generateKeyPair('ES256')).privateKey
  const now = Math.floor(Date.now() / 1000)
  const selfSigned = await new SignJWT({ iss: idp.issuer, sub: ana.sub, aud: base, resource: calc(), client_id: 'agent', tenant: 'acme', exp: now + 300, jti: 'x' })
    .setProtectedHeader({ alg: 'ES256', typ: 'oauth-id-jag+jwt', kid: 'idp-1' }).sign(other)
  const cases: Array<[string, Promise<string>, string]> = [
    ['signature by another key', Promise.resolve(selfSigned), 'invalid_grant'],
    ['typ other than oauth-id-jag+jwt (an ID token)', idp.idToken(ana), 'invalid_grant'],
    ['typ JWT', forged({}, { typ: 'JWT' }), 'invalid_grant'],
    ['an untrusted issuer', forged({ iss: 'https://evil.example' }), 'invalid_grant'],
    ['aud another authorization server', forged({ aud: 'https://other-as.example' }), 'invalid_grant'],
    ['client_id of another client', forged({ client_id: 'other-agent' }), 'invalid_grant'],
    ['resource not a route here', forged({ resource: `${base}/nope/mcp` }), 'invalid_grant'],
    ['expired', forged({ exp: now - 120 }), 'invalid_grant'],
    ['living a day', forged({ exp: now + 86400 }), 'invalid_grant'],
    ['no jti', forged({ jti: undefined }), 'invalid_grant'],
    ['a claim rule not met (tenant)', forged({ tenant: 'globex' }), 'invalid_grant'],
    ['an email outside the allow-list', forged({ email: 'eve@globex.example' }), 'invalid_grant'],
    ['an unverified email', forged({ email_verified: false }), 'invalid_grant'],
    ['a route whose allowed_clients does not name the client', forged({ resource: `${base}/files/mcp` }), 'invalid_target'],
    ['not a JWT', Promise.resolve('not-a-jwt'), 'invalid_grant']
  ]
  for (const [name, assertion, error] of cases) {
    const answer = await present(await assertion)
    t.equal(answer.status, 400, name)
    t.equal(answer.body.error, error, name)
  }

  const jag = await idJagFor()
  t.equal((await present(jag)).status, 200)
  const replay = await present(jag)
  t.equal(replay.body.error, 'invalid_grant', 'a replayed jti')
  t.match(replay.body.error_description, /already used/)

  const presentedByAnother = await present(await idJagFor(), {}, 'other-agent')
  t.equal(presentedByAnother.body.error, 'invalid_grant', 'an ID-JAG for one client presented by another')
  const noGrant = await present(await idJagFor(), {}, 'web-app')
  t.equal(noGrant.body.error, 'unauthorized_client', 'a client without the jwt-bearer grant')
  const notApproved = await present(await idJagFor(), { scope: 'calc.admin' })
  t.equal(notApproved.body.error, 'invalid_scope', 'only scopes the IdP did not approve')
  const otherResource = await present(await idJagFor(), { resource: `${base}/files/mcp` })
  t.equal(otherResource.body.error, 'invalid_target', 'a resource parameter other than the assertion\'s')
  const unauthenticated = await tokenRequest(base, { grant_type: JWT_BEARER, assertion: await idJagFor(), client_id: 'agent' })
  t.equal(unauthenticated.status, 401, 'the client must authenticate')
})
