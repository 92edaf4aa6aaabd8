/**
 * npm run demo: the whole login flow of an MCP client through the gateway, on this machine only.
 *
 * Starts the gateway (memory store), the sample MCP server and a local OpenID Connect provider
 * with its spec defaults (the email comes from userinfo), then drives a real MCP SDK client
 * through challenge, discovery, registration, consent, login, token, tools/call, refresh and
 * revocation, printing each step.
 * `--keep` leaves everything running for another client (MCP Inspector) until Ctrl-C.
 *
 * Development only: it reuses the test fixtures, and `oidc-provider` is a devDependency.
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:net'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import { freePort } from '../test/helper.js'
import { startMcpUpstream } from '../test/fixtures/mcp-upstream.js'
import { TestBrowser } from '../test/fixtures/browser.js'
import { TestOAuthClient } from '../test/fixtures/oauth-client.js'
import { mcpClient, REDIRECT, startAuthorizationServer, startLogin, textOf } from '../test/fixtures/authorization.js'

const KEEP = process.argv.includes('--keep')
const DEADLINE_MS = 30_000
const USER = 'demo@example.com'
const ROUTE = '/calc/mcp'

/** Started things, closed in reverse order at the end. */
const closers: Array<() => unknown> = []
const scope = { teardown: (fn: () => unknown) => { closers.push(fn) } }
async function closeAll (): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close()
}

let stepNo = 0
const step = (title: string, ...facts: string[]): void => {
  console.log(`\n${++stepNo}. ${title}`)
  for (const fact of facts) console.log(`   ${fact}`)
}
/**
 * Tokens are secrets: only a short prefix is printed, with a hash fingerprint to tell tokens
 * apart (every JWT starts alike, a refresh token keeps its family's prefix when it rotates).
 */
const short = (secret: string | undefined): string => `${(secret ?? '').slice(0, 8)}… #${createHash('sha256').update(secret ?? '').digest('hex').slice(0, 6)}`
function check (ok: unknown, failure: string): asserts ok {
  if (ok === false || ok === undefined || ok === null) throw new Error(failure)
}
/** The claims of our own access token, read (not verified) to show what the gateway minted. */
const claimsOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>

/** 8080 as in the README when it is free, so `--keep` has a memorable URL; any free port otherwise. */
async function gatewayPort (): Promise<number> {
  const free = await new Promise<boolean>(resolve => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(8080, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
  return free ? 8080 : await freePort()
}

/** What the SDK client sent and got, so the steps show its real requests rather than a retelling. */
interface Exchange { method: string, url: URL, status: number, headers: Headers }
const exchanges: Exchange[] = []
const watching: FetchLike = async (url, init) => {
  const res = await fetch(url, init)
  exchanges.push({ method: init?.method ?? 'GET', url: new URL(url), status: res.status, headers: res.headers })
  return res
}
const line = (e: Exchange): string => `${e.method} ${e.url.href} → ${e.status}`

async function walkThrough (): Promise<{ base: string, issuer: string, upstream: string }> {
  const upstream = await startMcpUpstream()
  scope.teardown(upstream.close)
  const { base, idp } = await startAuthorizationServer(scope, {
    config: { proxies: [{ pattern: ROUTE, target_url: upstream.url }] },
    port: await gatewayPort()
  })
  idp.loginAs({ email: USER })
  const url = `${base}${ROUTE}`
  console.log(`Gateway ${base} (memory store), sample MCP server ${upstream.url}, stand-in provider ${idp.issuer}`)
  console.log(`The MCP SDK client connects to ${url}`)

  const client = new TestOAuthClient(REDIRECT, { name: 'mcp-gateway demo client' })
  const transport = await startLogin(url, client, { fetch: watching })

  const challenge = exchanges.find(e => e.status === 401)
  check(challenge, 'the gateway did not challenge the client with 401')
  step('Challenge: the client calls without a token', line(challenge), `WWW-Authenticate: ${challenge.headers.get('www-authenticate') ?? '(missing)'}`)

  const metadata = exchanges.filter(e => e.url.pathname.startsWith('/.well-known/'))
  check(metadata.some(e => e.status === 200 && e.url.pathname.startsWith('/.well-known/oauth-protected-resource')), 'no protected resource metadata was found')
  check(metadata.some(e => e.status === 200 && e.url.pathname.startsWith('/.well-known/oauth-authorization-server')), 'no authorization server metadata was found')
  step('Discovery: the client reads the protected resource metadata (PRM), then the authorization server metadata', ...metadata.map(line))

  const registration = exchanges.find(e => e.url.pathname === '/oauth/register')
  const clientId = client.clientInformation()?.client_id
  check(registration?.status === 201 && clientId, 'dynamic client registration failed')
  step('Dynamic client registration (RFC 7591)', line(registration), `client_id: ${clientId}`)

  const authorizationUrl = client.authorizationUrl
  check(authorizationUrl, 'the client was not sent to the authorization endpoint')
  const browser = new TestBrowser()
  const page = await browser.follow(await browser.request(authorizationUrl.href), u => u.startsWith(REDIRECT))
  check(page.status === 200 && page.body.includes('name="csrf_token"'), `no consent page: HTTP ${page.status}`)
  check(page.body.includes('mcp-gateway demo client'), 'the consent page does not name the client')
  step('Consent: the browser opens the authorization URL',
    `${authorizationUrl.origin}${authorizationUrl.pathname} (PKCE S256, resource=${authorizationUrl.searchParams.get('resource') ?? ''}, scope=${authorizationUrl.searchParams.get('scope') ?? ''})`,
    'the consent page was shown, naming "mcp-gateway demo client" and the route; the user approves')

  const loginsBefore = idp.logins()
  const end = await browser.follow(await browser.submitConsent(page, 'approve'), u => u.startsWith(REDIRECT))
  check(end.location !== undefined && end.location.startsWith(REDIRECT), `the login stopped at ${end.url} with HTTP ${end.status}`)
  check(idp.logins() === loginsBefore + 1, 'nobody logged in at the provider')
  check(idp.userinfoCalls() > 0, 'the gateway did not ask the provider\'s userinfo for the email')
  const back = new URL(end.location)
  const code = back.searchParams.get('code')
  check(code, `no code came back: ${back.searchParams.get('error') ?? 'no error either'}`)
  check(back.searchParams.get('state') === authorizationUrl.searchParams.get('state'), 'the state came back changed')
  step('Provider login: the gateway sends the browser to the stand-in OpenID provider',
    `logged in at ${idp.issuer} as ${USER}; the gateway checked the ID token, read the email from userinfo and redirected to the client`,
    `${REDIRECT}?code=${short(code)}&state=(unchanged)&iss=${back.searchParams.get('iss') ?? ''}`)

  await transport.finishAuth(code)
  const first = client.tokens()
  const exchange = exchanges.filter(e => e.url.pathname === '/oauth/token').at(-1)
  check(exchange?.status === 200 && first?.access_token && first.refresh_token, 'the code was not exchanged for tokens')
  const claims = claimsOf(first.access_token)
  check(claims.aud === url, `the token is for ${String(claims.aud)}, not ${url}`)
  check(claims.email === USER, `the token names ${String(claims.email)}, not ${USER}`)
  step('Token: the client exchanges the code and its PKCE verifier',
    line(exchange),
    `access token ${short(first.access_token)} (ES256 JWT), expires in ${first.expires_in ?? '?'} s, scope "${first.scope ?? ''}"`,
    `audience ${String(claims.aud)} (this route only), email ${String(claims.email)}`,
    `refresh token ${short(first.refresh_token)}`)

  const mcp = await mcpClient(scope, url, client)
  const tools = (await mcp.listTools()).tools.map(t => t.name)
  const sum = textOf(await mcp.callTool({ name: 'add', arguments: { a: 2, b: 3 } }))
  check(sum === '5', `add(2, 3) answered ${sum}`)
  step('tools/call through the gateway with the access token', `tools/list: ${tools.join(', ')}`, `tools/call add {a: 2, b: 3} → ${sum}`)

  check(await auth(client, { serverUrl: url, fetchFn: watching }) === 'AUTHORIZED', 'the refresh failed')
  const second = client.tokens()
  check(second?.access_token && second.refresh_token, 'the refresh returned no tokens')
  check(second.access_token !== first.access_token && second.refresh_token !== first.refresh_token, 'the refresh did not rotate the tokens')
  step('Refresh: the client trades its refresh token for new tokens',
    `access token ${short(first.access_token)} → ${short(second.access_token)}`,
    `refresh token ${short(first.refresh_token)} → ${short(second.refresh_token)} (rotated: the old one is spent)`)

  const revoke = await fetch(`${base}/oauth/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: second.refresh_token, token_type_hint: 'refresh_token', client_id: clientId }).toString()
  })
  check(revoke.status === 200, `revocation answered ${revoke.status}`)
  const refused = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${second.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
  })
  check(refused.status === 401, `the revoked token got ${refused.status}, not 401`)
  step('Revocation: the client logs out (RFC 7009; the refresh token takes its access tokens with it)',
    `POST ${base}/oauth/revoke → ${revoke.status}`,
    `the revoked access token ${short(second.access_token)} now gets ${refused.status}: ${refused.headers.get('www-authenticate') ?? ''}`)

  return { base, issuer: idp.issuer, upstream: upstream.url }
}

async function main (): Promise<void> {
  // Bounded: a hang anywhere ends the demo with a message instead of waiting forever.
  const deadline = setTimeout(() => {
    console.error(`\nDemo failed: not finished within ${DEADLINE_MS / 1000} s`)
    process.exit(1)
  }, DEADLINE_MS)
  let running: Awaited<ReturnType<typeof walkThrough>>
  try {
    running = await walkThrough()
  } catch (err) {
    console.error(`\nDemo failed: ${(err as Error).message}`)
    await closeAll().catch(() => {})
    process.exit(1)
  } finally {
    clearTimeout(deadline)
  }
  console.log('\nAll steps passed.')
  if (!KEEP) {
    await closeAll()
    return
  }
  console.log(`
Still running (--keep); Ctrl-C stops everything.
  MCP server URL:      ${running.base}${ROUTE}   (e.g. npx @modelcontextprotocol/inspector, transport "Streamable HTTP")
  Authorization server ${running.base}   (metadata: ${running.base}/.well-known/oauth-authorization-server)
  Logins go to the local stand-in provider ${running.issuer}, which logs you in as ${USER} at once.
  Sample MCP server    ${running.upstream}   (direct, no authentication)`)
  await new Promise<void>(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await closeAll()
  console.log('Stopped.')
}

await main()
