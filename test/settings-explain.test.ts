// Issue 14, item 7: settings as a new user gets them wrong. `PORT=18080 npm start` must not
// advertise port 8080, and a variable that is almost one of ours is named at start-up instead of
// being silently ignored.
import t, { type Test } from 'tap'
import { buildGateway, finish, freePort, node, pollOk, workdir } from './helper.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }

t.test('without BASE_URL, metadata and challenges name the port the gateway listens on', async t => {
  const app = await buildGateway(t, { config, env: { BASE_URL: undefined, PORT: '18080' } })
  const metadata = (await app.inject('/.well-known/oauth-authorization-server')).json()
  t.equal(metadata.issuer, 'http://localhost:18080')
  t.equal(metadata.token_endpoint, 'http://localhost:18080/oauth/token')
  const challenge = await app.inject({ method: 'POST', url: '/calc/mcp', payload: {} })
  t.equal(challenge.statusCode, 401)
  t.match(challenge.headers['www-authenticate'], 'resource_metadata="http://localhost:18080/.well-known/oauth-protected-resource/calc/mcp"')
  const resource = (await app.inject('/.well-known/oauth-protected-resource/calc/mcp')).json()
  t.equal(resource.resource, 'http://localhost:18080/calc/mcp')
})

/** The warn-level lines the gateway logged while starting with `env`. */
async function startupWarnings (t: Test, env: Record<string, string>): Promise<string[]> {
  const logLines: string[] = []
  await buildGateway(t, { config, env, logLines })
  return logLines.filter(line => (JSON.parse(line) as { level: number }).level === 40).map(line => (JSON.parse(line) as { msg: string }).msg)
}

// Settings every test environment here has; warnings about them are not what these tests look at.
const GOOGLE = { OAUTH_GOOGLE_CLIENT_ID: 'gw.apps.googleusercontent.com', OAUTH_GOOGLE_CLIENT_SECRET: 'client-secret-value' }

t.test('a near-miss of a setting gets a warning naming the setting meant, and never its value', async t => {
  const warnings = await startupWarnings(t, {
    ...GOOGLE,
    OAUTH_GOOGLE_CLIENTID: 'typo-value-1',
    REDIS_SENTINEL: 'sentinel.example:26379',
    allowed_emails: 'ana@example.com'
  })
  const typos = warnings.filter(w => /did you mean/.test(w))
  t.same(typos.map(w => /did you mean (\w+)\?/.exec(w)?.[1]).sort(), ['ALLOWED_EMAILS', 'OAUTH_GOOGLE_CLIENT_ID', 'REDIS_SENTINELS'])
  t.match(typos.join('\n'), /OAUTH_GOOGLE_CLIENTID is not a setting of the gateway and is ignored; did you mean OAUTH_GOOGLE_CLIENT_ID\?/)
  t.notMatch(typos.join('\n'), /typo-value-1|sentinel\.example|ana@example/, 'no value is printed')
})

t.test('a correct environment, with other programs\' variables beside it, gets no such warning', async t => {
  const warnings = await startupWarnings(t, {
    ...GOOGLE,
    PORT: '8080',
    HOST: '0.0.0.0',
    ALLOWED_EMAIL_DOMAINS: 'example.com',
    REFRESH_TOKEN_TTL: '86400',
    OTEL_SERVICE_NAME: 'gw',
    // Set by Kubernetes for a Service named redis, by the OpenTelemetry operator, and by the shell.
    REDIS_PORT: 'tcp://10.0.0.1:6379',
    REDIS_SERVICE_HOST: '10.0.0.1',
    OTEL_RESOURCE_ATTRIBUTES: 'k8s.pod.name=gw-0',
    OTEL_EXPORTER_OTLP_HEADERS: 'x=y',
    PATH: '/usr/bin',
    HOME: '/home/node'
  })
  t.same(warnings.filter(w => /did you mean/.test(w)), [])
})

t.test('a real server started with only PORT advertises that port', async t => {
  const port = await freePort()
  const gateway = node('src/server.ts', [], { PORT: String(port), HOST: '127.0.0.1', KEYS_FILE: '' }, workdir(config.proxies))
  t.teardown(() => { gateway.kill('SIGKILL') })
  t.equal(await pollOk(`http://127.0.0.1:${port}/healthz`, gateway, 30_000), 200, 'the gateway starts')
  const metadata = await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)).json() as { issuer: string }
  t.equal(metadata.issuer, `http://localhost:${port}`)
})

t.test('when start-up fails, a misspelt variable behind it is named too', async t => {
  const run = await finish(node('src/server.ts', [], { REDIS_SENTINEL: 'sentinel.example:26379', REDIS_SENTINEL_MASTER: 'main' }, workdir(config.proxies)))
  t.equal(run.code, 1)
  t.equal(run.stderr.trim(), [
    'Invalid configuration: REDIS_SENTINEL_MASTER needs REDIS_SENTINELS',
    'REDIS_SENTINEL is not a setting of the gateway and is ignored; did you mean REDIS_SENTINELS?'
  ].join('\n'))
})
