import t from 'tap'
import { loadGatewayConfig } from '../src/config/gateway-config.js'

const route = { pattern: '/calc/mcp', target_url: 'http://calc:3000/mcp' }
const load = (env: Record<string, string>, configFile: unknown = { proxies: [route] }): unknown => loadGatewayConfig({ env, configFile })

t.test('defaults give a working local configuration', async t => {
  const config = loadGatewayConfig({ env: {}, configFile: { proxies: [route] } })
  t.equal(config.env.BASE_URL, 'http://localhost:8080')
  t.equal(config.env.PORT, 8080)
  t.equal(config.allowedOrigins, '*')
  t.same(config.routes[0], {
    pattern: '/calc/mcp',
    targetUrl: 'http://calc:3000/mcp',
    resourceUrl: 'http://localhost:8080/calc/mcp',
    metadataUrl: 'http://localhost:8080/.well-known/oauth-protected-resource/calc/mcp',
    allowedEmails: [],
    allowedDomains: [],
    allowedClients: [],
    upstream: { auth: 'none' },
    scopes: ['mcp'],
    toolPolicy: undefined,
    auditArguments: false
  })
})

t.test('per-route options are read and normalised', async t => {
  const config = loadGatewayConfig({
    env: { BASE_URL: 'https://gw.example.com', API_KEY: 'k', ALLOWED_ORIGINS: 'https://a.example, https://b.example' },
    configFile: {
      proxies: [{ ...route, allowed_emails: ['Ana@Example.com'], allowed_domains: ['@Example.org'], upstream_auth: 'header', upstream_header: 'X-Api-Key', upstream_header_env: 'API_KEY', scopes: ['calc'] }],
      clients: [{ client_id: 'app', redirect_uris: ['https://app.example/cb'], client_secret_env: 'API_KEY' }]
    }
  })
  const r = config.routes[0]
  t.same(r.allowedEmails, ['ana@example.com'])
  t.same(r.allowedDomains, ['example.org'])
  t.same(r.upstream, { auth: 'header', headerName: 'x-api-key', value: 'k' })
  t.same(config.allowedOrigins, ['https://a.example', 'https://b.example'])
  t.match(config.clients, [{ clientId: 'app', clientSecret: 'k', redirectUris: ['https://app.example/cb'], clientName: 'app', grantTypes: ['authorization_code', 'refresh_token'], authMethod: 'client_secret_basic' }])
})

t.test('machine clients, trusted IdPs and allowed_clients are read', async t => {
  const config = loadGatewayConfig({
    env: { CI_SECRET: 'shh' },
    configFile: {
      proxies: [{ ...route, allowed_clients: ['ci'], tools: { grants: [{ clients: ['ci'], allow: ['deploy'] }] } }],
      clients: [
        { client_id: 'ci', grant_types: ['client_credentials'], client_secret_env: 'CI_SECRET', routes: ['/calc/mcp'], scopes: ['mcp'] },
        { client_id: 'signer', grant_types: ['client_credentials'], jwks_uri: 'https://keys.example/jwks', routes: ['/calc/mcp'] }
      ],
      trusted_idps: [{ issuer: 'https://idp.example', jwks_uri: 'https://idp.example/jwks', claims: { tenant: ['acme'] } }]
    }
  })
  t.same(config.routes[0].allowedClients, ['ci'])
  t.same(config.routes[0].toolPolicy?.decide('deploy', { clientId: 'ci', scopes: [] }), { allowed: true })
  t.match(config.clients[0], { clientId: 'ci', grantTypes: ['client_credentials'], authMethod: 'client_secret_basic', redirectUris: [], routes: ['/calc/mcp'], scopes: ['mcp'] })
  t.match(config.clients[1], { clientId: 'signer', authMethod: 'private_key_jwt', jwksUri: 'https://keys.example/jwks', scopes: undefined })
  t.same(config.trustedIdps, [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks', claims: { tenant: ['acme'] } }])
})

t.test('every configuration mistake stops start-up with a message naming it', async t => {
  const cases: Array<[string, Record<string, string>, unknown, string]> = [
    ['BASE_URL trailing slash', { BASE_URL: 'https://gw.example.com/' }, undefined, 'Invalid configuration: BASE_URL must not end with a slash'],
    ['BASE_URL not a URL', { BASE_URL: 'gateway' }, undefined, 'Invalid configuration: BASE_URL "gateway" is not a URL'],
    ['BASE_URL with a path', { BASE_URL: 'https://gw.example.com/mcp' }, undefined, 'Invalid configuration: BASE_URL must be an origin only (no path, query or fragment)'],
    ['PORT not a number', { PORT: 'eighty' }, undefined, 'Invalid configuration: PORT must be integer'],
    ['unknown provider', { OAUTH_PROVIDER: 'okta' }, undefined, 'Invalid configuration: OAUTH_PROVIDER'],
    ['REDIS_URL scheme', { REDIS_URL: 'http://redis:6379' }, undefined, 'Invalid configuration: REDIS_URL must start with redis:// or rediss://'],
    ['REDIS_ADDR form', { REDIS_ADDR: 'redis' }, undefined, 'Invalid configuration: REDIS_ADDR must be host:port'],
    ['TRUST_PROXY form', { TRUST_PROXY: 'maybe' }, undefined, 'Invalid configuration: TRUST_PROXY must be true, false or a number of hops'],
    ['headers timeout above the request timeout', { HEADERS_TIMEOUT_MS: '40000' }, undefined, 'Invalid configuration: HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS'],
    ['idle timeout that would cut a request waiting for its upstream', { CONNECTION_TIMEOUT_MS: '60000' }, undefined, 'Invalid configuration: CONNECTION_TIMEOUT_MS must exceed UPSTREAM_TIMEOUT_MS'],
    ['request timeout of 0', { REQUEST_TIMEOUT_MS: '0' }, undefined, 'Invalid configuration: REQUEST_TIMEOUT_MS must be >= 100'],
    ['bad encryption key', { ENCRYPTION_KEY: 'c2hvcnQ=' }, undefined, 'Invalid configuration: ENCRYPTION_KEY must be 32 bytes in base64 (got 5 bytes)'],
    ['signing key not PEM', { JWT_SIGNING_KEY: 'secret' }, undefined, 'Invalid configuration: JWT_SIGNING_KEY holds no PEM private key'],
    ['pattern without slash', {}, { proxies: [{ pattern: 'calc/mcp', target_url: 'http://c/mcp' }] }, 'Invalid configuration: proxies[0].pattern "calc/mcp" must start with "/"'],
    ['duplicate pattern', {}, { proxies: [route, route] }, 'Invalid configuration: proxies[1].pattern "/calc/mcp" is a duplicate'],
    ['target not http', {}, { proxies: [{ pattern: '/a/mcp', target_url: 'ftp://c/mcp' }] }, 'Invalid configuration: proxies[0].target_url "ftp://c/mcp" must be an http or https URL'],
    ['target not a URL', {}, { proxies: [{ pattern: '/a/mcp', target_url: 'calc:3000' }] }, 'Invalid configuration: proxies[0].target_url "calc:3000" must be an http or https URL'],
    ['missing target', {}, { proxies: [{ pattern: '/a/mcp' }] }, 'Invalid configuration: proxies[0].target_url is required'],
    ['pattern collides', {}, { proxies: [{ pattern: '/oauth/token', target_url: 'http://c/mcp' }] }, 'Invalid configuration: proxies[0].pattern "/oauth/token" collides with a gateway endpoint'],
    ['unknown route key (seed camelCase)', {}, { proxies: [{ pattern: '/a/mcp', targetUrl: 'http://c/mcp' }] }, 'Invalid configuration: proxies[0].targetUrl is not a known setting'],
    ['unknown upstream_auth', {}, { proxies: [{ ...route, upstream_auth: 'magic' }] }, 'Invalid configuration: proxies[0].upstream_auth "magic" must be one of none, identity, provider_token, header'],
    ['header auth without env', {}, { proxies: [{ ...route, upstream_auth: 'header' }] }, 'Invalid configuration: proxies[0].upstream_header_env is required with upstream_auth: header'],
    ['header env unset', {}, { proxies: [{ ...route, upstream_auth: 'header', upstream_header_env: 'NOPE' }] }, 'Invalid configuration: proxies[0].upstream_header_env names NOPE, which is not set'],
    ['proxies not a list', {}, { proxies: { pattern: '/a' } }, 'Invalid configuration: config.yaml proxies must be a list'],
    ['empty file', {}, null, 'Invalid configuration: config.yaml must be a mapping with a `proxies` list'],
    ['unknown top-level key', {}, { proxies: [], routes: [] }, 'Invalid configuration: config.yaml routes is not a known setting'],
    ['client without redirect', {}, { proxies: [route], clients: [{ client_id: 'x', redirect_uris: [] }] }, 'Invalid configuration: clients[0].redirect_uris must list at least one URI'],
    ['unknown grant type', {}, { proxies: [route], clients: [{ client_id: 'x', grant_types: ['password'] }] }, 'Invalid configuration: clients[0].grant_types[0] "password" must be one of authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:jwt-bearer'],
    ['machine client without routes', { S: 's' }, { proxies: [route], clients: [{ client_id: 'x', grant_types: ['client_credentials'], client_secret_env: 'S' }] }, 'Invalid configuration: clients[0].routes must name the routes a client_credentials client may get tokens for'],
    ['machine client naming no route', { S: 's' }, { proxies: [route], clients: [{ client_id: 'x', grant_types: ['client_credentials'], client_secret_env: 'S', routes: ['/nope/mcp'] }] }, 'Invalid configuration: clients[0].routes[0] "/nope/mcp" is not the pattern of a route in proxies'],
    ['public machine client', {}, { proxies: [route], clients: [{ client_id: 'x', grant_types: ['client_credentials'], routes: ['/calc/mcp'] }] }, 'Invalid configuration: clients[0].token_endpoint_auth_method must authenticate the client (not none) with client_credentials'],
    ['private_key_jwt without keys', {}, { proxies: [route], clients: [{ client_id: 'x', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', routes: ['/calc/mcp'] }] }, 'Invalid configuration: clients[0].jwks or jwks_uri is required with private_key_jwt'],
    ['secret method without a secret', {}, { proxies: [route], clients: [{ client_id: 'x', redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'client_secret_post' }] }, 'Invalid configuration: clients[0].client_secret_env is required with client_secret_post'],
    ['client keys fetched over plain http', {}, { proxies: [route], clients: [{ client_id: 'x', grant_types: ['client_credentials'], jwks_uri: 'http://keys.example/jwks', routes: ['/calc/mcp'] }] }, 'Invalid configuration: clients[0].jwks_uri "http://keys.example/jwks" must be an https URL (http only on a loopback host)'],
    ['trusted IdP keys over plain http', {}, { proxies: [route], trusted_idps: [{ issuer: 'https://idp.example', jwks_uri: 'http://idp.example/jwks' }] }, 'Invalid configuration: trusted_idps[0].jwks_uri "http://idp.example/jwks" must be an https URL'],
    ['trusted IdP without keys', {}, { proxies: [route], trusted_idps: [{ issuer: 'https://idp.example' }] }, 'Invalid configuration: trusted_idps[0].jwks_uri is required'],
    ['allowed_clients not a list', {}, { proxies: [{ ...route, allowed_clients: 'ci' }] }, 'Invalid configuration: proxies[0].allowed_clients must be a list'],
    ['unknown tool grant key', {}, { proxies: [{ ...route, tools: { grants: [{ allow: ['a'], client: ['x'] }] } }] }, 'Invalid configuration: proxies[0].tools.grants[0].client is not a known setting (emails, domains, clients, allow)']
  ]
  for (const [name, env, file, message] of cases) {
    t.throws(() => load(env, file === undefined ? { proxies: [route] } : file), { name: 'ConfigError', message: new RegExp('^' + message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) }, name)
  }
})

t.test('a missing or broken config file is named', async t => {
  t.throws(() => loadGatewayConfig({ env: { CONFIG_FILE: '/nonexistent/config.yaml' } }), { message: 'Invalid configuration: CONFIG_FILE cannot be read (/nonexistent/config.yaml): ENOENT' })
})
