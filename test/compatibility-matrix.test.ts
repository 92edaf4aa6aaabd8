/**
 * The clients of README's "Works with" table, each as it really talks to an authorization
 * server: how it becomes known (registration or a URL client id), the authorization request
 * it builds, how it authenticates and what it sends at the token endpoint, and how it refreshes.
 * Each runs the whole flow: consent, provider login, code exchange, a tool call, a refresh.
 */
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startMcpUpstream, type McpUpstream } from './fixtures/mcp-upstream.js'
import { TestBrowser } from './fixtures/browser.js'
import { CHALLENGE, VERIFIER, startAuthorizationServer, textOf, tokenRequest, type AuthorizationSetup } from './fixtures/authorization.js'

interface ClientShape {
  name: string
  /** DCR metadata, or a metadata document served at a URL that is the client id. */
  registration: { dcr: Record<string, unknown> } | { document: Record<string, unknown> }
  /** The redirect URI of this authorization (a loopback client may pick another port). */
  redirectUri: string
  /** The scope it asks for; `metadata`: every scope the authorization-server metadata lists. */
  scope?: string | 'metadata'
  /** The `resource` it sends at /authorize and /token; undefined: none. */
  resource: (url: string) => string | undefined
  /** Sent at /token for the code but not the refresh, or the other way round. */
  tokenResource?: (url: string) => string | undefined
  /** Extra refresh parameters, as the client sends them. */
  refreshExtra?: Record<string, string>
  /** The client secret goes in the body (client_secret_post). */
  postsSecret?: boolean
}

const SHAPES: ClientShape[] = [
  {
    name: 'Claude (web): confidential DCR client posting its secret, scopes from the authorization-server metadata',
    registration: { dcr: { client_name: 'Claude', redirect_uris: ['https://claude.ai/api/mcp/auth_callback'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_post' } },
    redirectUri: 'https://claude.ai/api/mcp/auth_callback',
    scope: 'metadata',
    resource: url => url,
    postsSecret: true
  },
  {
    name: 'ChatGPT: URL client id (metadata document), connector redirect URI',
    registration: { document: { client_name: 'ChatGPT', redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' } },
    redirectUri: 'https://chatgpt.com/connector_platform_oauth_redirect',
    scope: 'mcp',
    resource: url => url
  },
  {
    name: 'VS Code: registered loopback port, authorizing from another port',
    registration: { dcr: { client_name: 'Visual Studio Code', redirect_uris: ['http://127.0.0.1:33418/', 'https://vscode.dev/redirect'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' } },
    redirectUri: 'http://127.0.0.1:54321/',
    resource: url => url
  },
  {
    name: 'a desktop app with a private-use URI scheme',
    registration: { dcr: { client_name: 'Desktop app', redirect_uris: ['com.example.desktop:/oauth/callback'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', application_type: 'native' } },
    redirectUri: 'com.example.desktop:/oauth/callback',
    scope: 'mcp',
    resource: url => url
  },
  {
    name: 'Claude Code and other CLIs: scope=mcp offline_access, asked again at refresh',
    registration: { dcr: { client_name: 'Claude Code', redirect_uris: ['http://localhost:45454/callback'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', scope: 'mcp offline_access' } },
    redirectUri: 'http://localhost:45454/callback',
    scope: 'mcp offline_access',
    resource: url => url,
    refreshExtra: { scope: 'mcp offline_access' }
  },
  {
    name: 'mcp-remote: loopback callback, openid-style scopes it does not need',
    registration: { dcr: { client_name: 'MCP CLI Proxy', redirect_uris: ['http://localhost:3334/oauth/callback'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', software_id: '2e6dc280-f3c3-4e01-99a7-8181dbd1d23d', software_version: '0.1.30' } },
    redirectUri: 'http://localhost:3334/oauth/callback',
    scope: 'openid email profile mcp',
    resource: url => url
  },
  {
    name: 'a client that omits resource at the token endpoint',
    registration: { dcr: { client_name: 'Older client', redirect_uris: ['http://127.0.0.1:8765/cb'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' } },
    redirectUri: 'http://127.0.0.1:8765/cb',
    resource: url => url,
    tokenResource: () => undefined
  },
  {
    name: 'a client that sends a case-variant resource (upper-case scheme and host, trailing slash)',
    registration: { dcr: { client_name: 'Case client', redirect_uris: ['http://127.0.0.1:8766/cb'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' } },
    redirectUri: 'http://127.0.0.1:8766/cb',
    resource: url => url.replace('http://127.0.0.1', 'HTTP://127.0.0.1') + '/'
  }
]

let upstream: McpUpstream
let setup: AuthorizationSetup
let documentsOrigin: string
const documents = new Map<string, Record<string, unknown>>()

t.before(async () => {
  upstream = await startMcpUpstream()
  const server = createServer((req, res) => {
    const document = documents.get(req.url ?? '')
    res.writeHead(document === undefined ? 404 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(document ?? {}))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  documentsOrigin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  setup = await startAuthorizationServer(t, { config: { proxies: [{ pattern: '/calc/mcp', target_url: upstream.url, tools: { required_scopes: { progress: ['calc.stream'] } } }] } })
})
t.teardown(async () => await upstream.close())

async function knownAs (shape: ClientShape, index: number): Promise<{ clientId: string, secret?: string }> {
  if ('document' in shape.registration) {
    const clientId = `${documentsOrigin}/client-${index}.json`
    documents.set(`/client-${index}.json`, { ...shape.registration.document, client_id: clientId })
    return { clientId }
  }
  const res = await fetch(`${setup.base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(shape.registration.dcr) })
  const body = await res.json() as { client_id: string, client_secret?: string }
  if (res.status !== 201) throw new Error(`registration refused: ${JSON.stringify(body)}`)
  return { clientId: body.client_id, secret: body.client_secret }
}

async function toolCall (accessToken: string, url: string): Promise<string> {
  const client = new Client({ name: 'matrix', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } }))
  try {
    return textOf(await client.callTool({ name: 'add', arguments: { a: 40, b: 2 } }))
  } finally {
    await client.close()
  }
}

SHAPES.forEach((shape, index) => {
  t.test(shape.name, async t => {
    const url = `${setup.base}/calc/mcp`
    const { clientId, secret } = await knownAs(shape, index)
    const metadata = await (await fetch(`${setup.base}/.well-known/oauth-authorization-server`)).json() as { scopes_supported: string[] }
    const scope = shape.scope === 'metadata' ? metadata.scopes_supported.join(' ') : shape.scope
    const query = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: shape.redirectUri, code_challenge: CHALLENGE, code_challenge_method: 'S256', state: `s-${index}` })
    if (scope !== undefined) query.set('scope', scope)
    const resource = shape.resource(url)
    if (resource !== undefined) query.set('resource', resource)

    const back = await new TestBrowser().authorize(`${setup.base}/oauth/authorize?${query.toString()}`, shape.redirectUri)
    t.equal(back.searchParams.get('state'), `s-${index}`)
    t.equal(back.searchParams.get('iss'), setup.base)
    const code = back.searchParams.get('code')
    t.ok(code, 'a code')

    const auth: Record<string, string> = shape.postsSecret === true ? { client_id: clientId, client_secret: secret as string } : { client_id: clientId }
    const tokenResource = (shape.tokenResource ?? shape.resource)(url)
    const withResource = (form: Record<string, string>): Record<string, string> => tokenResource === undefined ? form : { ...form, resource: tokenResource }
    const tokens = await tokenRequest(setup.base, withResource({ grant_type: 'authorization_code', code: code as string, redirect_uri: shape.redirectUri, code_verifier: VERIFIER, ...auth }))
    t.equal(tokens.status, 200, JSON.stringify(tokens.body))
    t.type(tokens.body.refresh_token, 'string', 'a refresh token')
    t.match(tokens.body.scope, /^mcp( calc\.stream)?$/, 'scope says what was granted, nothing it does not know')
    t.equal(await toolCall(tokens.body.access_token as string, url), '42', 'a tool call')

    const refreshed = await tokenRequest(setup.base, withResource({ grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token as string, ...auth, ...shape.refreshExtra }))
    t.equal(refreshed.status, 200, JSON.stringify(refreshed.body))
    t.not(refreshed.body.refresh_token, tokens.body.refresh_token, 'rotated')
    t.equal(await toolCall(refreshed.body.access_token as string, url), '42', 'the refreshed token works')
  })
})
