import t from 'tap'
import { createServer } from 'node:http'
import { exportJWK, exportPKCS8, generateKeyPair, SignJWT, decodeJwt, type CryptoKey } from 'jose'
import { ClientCredentialsProvider, PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js'
import { buildGateway, freePort } from './helper.js'
import { startMcpUpstream, type McpUpstream } from './fixtures/mcp-upstream.js'
import { mcpClient, textOf, tokenRequest } from './fixtures/authorization.js'

const SECRET = 'ci-bot-secret-of-some-length'
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
let upstream: McpUpstream
let base: string
let keyBotKey: CryptoKey
let remoteBotPem: string

t.before(async () => {
  upstream = await startMcpUpstream()
  const keyBot = await generateKeyPair('ES256', { extractable: true })
  keyBotKey = keyBot.privateKey
  const remoteBot = await generateKeyPair('ES256', { extractable: true })
  remoteBotPem = await exportPKCS8(remoteBot.privateKey)
  // The remote client's keys, served on loopback as its jwks_uri.
  const jwks = JSON.stringify({ keys: [{ ...await exportJWK(remoteBot.publicKey), alg: 'ES256', use: 'sig' }] })
  const keyServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(jwks))
  await new Promise<void>(resolve => keyServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { keyServer.close() })
  const jwksUri = `http://127.0.0.1:${(keyServer.address() as { port: number }).port}/jwks.json`

  const deadKeys = `http://127.0.0.1:${await freePort()}/jwks.json`
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  const config = {
    proxies: [
      { pattern: '/calc/mcp', target_url: upstream.url, tools: { allow: ['add', 'progress'], grants: [{ clients: ['ci-bot'], allow: ['headers'] }], required_scopes: { progress: ['calc.stream'] } } },
      { pattern: '/files/mcp', target_url: upstream.url, allowed_clients: ['someone-else'] },
      { pattern: '/other/mcp', target_url: upstream.url },
      { pattern: '/drive/mcp', target_url: upstream.url, upstream_auth: 'provider_token' }
    ],
    clients: [
      { client_id: 'ci-bot', grant_types: ['client_credentials'], client_secret_env: 'CI_BOT_SECRET', routes: ['/calc/mcp', '/files/mcp', '/drive/mcp'], scopes: ['mcp'] },
      { client_id: 'key-bot', grant_types: ['client_credentials'], jwks: { keys: [await exportJWK(keyBot.publicKey)] }, routes: ['/calc/mcp'] },
      { client_id: 'remote-bot', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksUri, routes: ['/calc/mcp'] },
      { client_id: 'dead-keys-bot', grant_types: ['client_credentials'], jwks_uri: deadKeys, routes: ['/calc/mcp'] },
      { client_id: 'web-app', redirect_uris: ['http://127.0.0.1:7/callback'] }
    ]
  }
  await buildGateway(t, { listen: true, port, env: { CI_BOT_SECRET: SECRET }, config })
})
t.teardown(async () => await upstream.close())

const calc = (): string => `${base}/calc/mcp`
const basic = (id: string, secret: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` })

async function assertion (claims: Record<string, unknown> = {}, opts: { lifetime?: number, key?: CryptoKey } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload = { iss: 'key-bot', sub: 'key-bot', aud: base, iat: now, exp: now + (opts.lifetime ?? 60), jti: crypto.randomUUID(), ...claims }
  return await new SignJWT(payload).setProtectedHeader({ alg: 'ES256' }).sign(opts.key ?? keyBotKey)
}

const withAssertion = async (jwt: string, extra: Record<string, string> = {}): ReturnType<typeof tokenRequest> =>
  await tokenRequest(base, { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt, resource: calc(), ...extra })

t.test('metadata advertises the extension: grant type, private_key_jwt and its algorithms', async t => {
  const meta = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json() as Record<string, string[]>
  t.ok(meta.grant_types_supported.includes('client_credentials'))
  t.ok(meta.token_endpoint_auth_methods_supported.includes('private_key_jwt'))
  t.ok(meta.token_endpoint_auth_signing_alg_values_supported.includes('ES256'))
  t.notOk(meta.token_endpoint_auth_signing_alg_values_supported.includes('HS256'), 'no shared-secret assertions')
})

t.test('the SDK\'s ClientCredentialsProvider calls a tool through the gateway', async t => {
  const provider = new ClientCredentialsProvider({ clientId: 'ci-bot', clientSecret: SECRET, expectedIssuer: base })
  const client = await mcpClient(t, calc(), provider)
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })), '5')
  const tokens = provider.tokens()
  t.notOk(tokens?.refresh_token, 'no refresh token')
  t.equal(tokens?.scope, 'mcp', 'the scopes the client may get')
  const claims = decodeJwt(tokens?.access_token as string)
  t.equal(claims.sub, 'ci-bot', 'sub is the client id')
  t.equal(claims.aud, calc(), 'bound to the route')
  const headers = await client.callTool({ name: 'headers', arguments: {} })
  t.notOk(headers.isError, 'a tool-policy grant naming the client opens a tool')
  t.notMatch(textOf(headers), /authorization/i, 'its token is not forwarded')
})

t.test('the SDK\'s PrivateKeyJwtProvider (keys from a jwks_uri) calls a tool through the gateway', async t => {
  const provider = new PrivateKeyJwtProvider({ clientId: 'remote-bot', privateKey: remoteBotPem, algorithm: 'ES256', expectedIssuer: base })
  const client = await mcpClient(t, calc(), provider)
  t.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 20, b: 22 } })), '42')
  t.equal(decodeJwt(provider.tokens()?.access_token as string).sub, 'remote-bot')
  const headers = await client.callTool({ name: 'headers', arguments: {} }).catch((err: Error) => ({ isError: true, content: [{ text: err.message }] }))
  t.ok(headers.isError, 'a tool granted to another client stays closed')
})

t.test('client_secret_post and inline keys work too; the token opens only its route', async t => {
  const post = await tokenRequest(base, { grant_type: 'client_credentials', client_id: 'ci-bot', client_secret: SECRET, resource: calc(), scope: 'mcp openid' })
  t.equal(post.status, 200)
  t.equal(post.body.scope, 'mcp', 'unknown scopes left out')
  const signed = await withAssertion(await assertion())
  t.equal(signed.status, 200)
  t.equal(signed.body.scope, 'mcp', 'no scopes listed for the client: the route\'s own')
  const stepUp = await withAssertion(await assertion(), { scope: 'mcp calc.stream' })
  t.equal(stepUp.body.scope, 'mcp calc.stream', 'and the scopes its tools ask for, when asked')
  const other = await fetch(`${base}/other/mcp`, { method: 'POST', headers: { authorization: `Bearer ${String(signed.body.access_token)}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' })
  t.equal(other.status, 401, 'another route refuses it')
})

t.test('attacks', async t => {
  const wrongSecret = await tokenRequest(base, { grant_type: 'client_credentials', resource: calc() }, basic('ci-bot', 'guess'))
  t.equal(wrongSecret.status, 401, 'wrong secret')
  t.equal(wrongSecret.body.error, 'invalid_client')

  const jwt = await assertion()
  t.equal((await withAssertion(jwt)).status, 200)
  const replay = await withAssertion(jwt)
  t.equal(replay.status, 401, 'replayed jti')
  t.equal(replay.body.error, 'invalid_client')

  const expired = await withAssertion(await assertion({ exp: Math.floor(Date.now() / 1000) - 120 }))
  t.equal(expired.body.error, 'invalid_client', 'expired assertion')
  const longLived = await withAssertion(await assertion({}, { lifetime: 3600 }))
  t.equal(longLived.body.error, 'invalid_client', 'assertion living an hour')
  const wrongAud = await withAssertion(await assertion({ aud: 'https://other-as.example' }))
  t.equal(wrongAud.body.error, 'invalid_client', 'wrong aud')
  const tokenEndpointAud = await withAssertion(await assertion({ aud: `${base}/oauth/token` }))
  t.equal(tokenEndpointAud.status, 200, 'the token endpoint URL is an accepted aud')
  const otherKey = (await generateKeyPair('ES256')).privateKey
  t.equal((await withAssertion(await assertion({}, { key: otherKey }))).body.error, 'invalid_client', 'signed with another key')
  const secretForKeyClient = await tokenRequest(base, { grant_type: 'client_credentials', resource: calc() }, basic('key-bot', 'anything'))
  t.equal(secretForKeyClient.body.error, 'invalid_client', 'a private_key_jwt client cannot use a secret')

  const notItsRoute = await tokenRequest(base, { grant_type: 'client_credentials', resource: `${base}/other/mcp` }, basic('ci-bot', SECRET))
  t.equal(notItsRoute.body.error, 'invalid_target', 'a route the client does not list')
  const notAllowed = await tokenRequest(base, { grant_type: 'client_credentials', resource: `${base}/files/mcp` }, basic('ci-bot', SECRET))
  t.equal(notAllowed.body.error, 'invalid_target', 'a route whose allowed_clients does not name it')
  const needsUser = await tokenRequest(base, { grant_type: 'client_credentials', resource: `${base}/drive/mcp` }, basic('ci-bot', SECRET))
  t.equal(needsUser.body.error, 'invalid_target', 'a provider_token route needs a user\'s provider login')
  const beyond = await tokenRequest(base, { grant_type: 'client_credentials', resource: calc(), scope: 'mcp calc.stream' }, basic('ci-bot', SECRET))
  t.equal(beyond.body.error, 'invalid_scope', 'scope beyond its allowance')
  const publicClient = await tokenRequest(base, { grant_type: 'client_credentials', client_id: 'web-app', resource: calc() })
  t.equal(publicClient.body.error, 'unauthorized_client', 'a public client asking for client_credentials')
  const dcr = await fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:7/cb'], grant_types: ['client_credentials'] }) })
  t.equal(dcr.status, 400, 'registration cannot create a client_credentials client')
})

t.test('a client whose jwks_uri does not answer gets a 503 to retry, not a 500', async t => {
  const jwt = await assertion({ iss: 'dead-keys-bot', sub: 'dead-keys-bot' })
  const answer = await withAssertion(jwt)
  t.equal(answer.status, 503)
  t.equal(answer.body.error, 'temporarily_unavailable')
  t.ok(answer.headers.get('retry-after'))
  t.equal((await withAssertion(await assertion())).status, 200, 'other clients are unaffected')
})
