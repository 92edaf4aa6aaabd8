// The chart and the gateway agree: render the chart, take the config.yaml and the environment
// it gives the gateway container (Secrets resolved from the rendered manifests), and start the
// real gateway with them. Redis is a redis-server of this test on a free loopback port, with a
// password, wired the way the chart wires an external Redis.
import t, { type Test } from 'tap'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, pollOk, stopProcess } from './helper.js'
import { parseAllDocuments } from 'yaml'

type Manifest = Record<string, any>

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const chart = path.join(root, 'chart')

t.setTimeout(120_000)
t.test(
  'the gateway starts with what the chart renders',
  { skip: !existsSync(path.join(root, 'src', 'server.ts')) && 'src/server.ts is not there yet' },
  run
)

async function run (t: Test): Promise<void> {
  const helmBin = execFileSync(path.join(root, 'scripts', 'helm.sh'), { encoding: 'utf8', timeout: 300_000 }).trim()
  // A Redis of our own, with a password, so the password wiring is exercised too.
  const redisPort = await freePort()
  const redisPassword = 'chart-test-password'
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', redisPassword], { stdio: 'ignore' })
  t.teardown(() => stopProcess(redis))
  t.equal(await waitForPort(redisPort, redis, 10_000), true, 'redis-server is up')

  const base = 'https://mcp-gateway.example.com'
  const proxies = [
    { pattern: '/calc/mcp', targetUrl: 'http://127.0.0.1:9/mcp', allowedEmails: ['ana@example.com'], upstreamAuth: 'identity' },
    { pattern: '/files/mcp', targetUrl: 'http://127.0.0.1:9/files', allowedDomains: ['example.com'], scopes: ['mcp', 'files'] },
    { pattern: '/search/mcp', targetUrl: 'http://127.0.0.1:9/search', upstreamAuth: 'header', upstreamHeader: 'X-Api-Key', upstreamHeaderEnv: 'SEARCH_API_KEY' },
  ]
  const clients = [{ clientId: 'my-app', clientName: 'My App', redirectUris: ['https://app.example.com/cb'], clientSecretEnv: 'MY_APP_SECRET' }]
  const extraEnv = [
    { name: 'SEARCH_API_KEY', value: 'search-key' },
    { name: 'MY_APP_SECRET', value: 'my-app-secret' },
  ]
  const out = execFileSync(
    helmBin,
    [
      'template', 'my-gateway', chart,
      '--set', `config.baseUrl=${base}`,
      '--set', `config.oauth.google.redirectUri=${base}/oauth/callback`,
      '--set', 'config.oauth.google.clientId=test-client.apps.googleusercontent.com',
      '--set', 'config.oauth.google.clientSecret=test-secret',
      '--set', 'config.allowedEmailDomains=example.com',
      '--set', 'config.logLevel=warn',
      '--set', 'config.tokens.accessTokenTtl=600',
      '--set', 'redis.external.enabled=true',
      '--set', 'redis.external.host=127.0.0.1',
      '--set', `redis.external.port=${redisPort}`,
      '--set', `redis.external.password=${redisPassword}`,
      '--set-json', `config.proxies=${JSON.stringify(proxies)}`,
      '--set-json', `config.clients=${JSON.stringify(clients)}`,
      '--set-json', `extraEnv=${JSON.stringify(extraEnv)}`,
    ],
    { encoding: 'utf8', timeout: 60_000 }
  )
  const ms = parseAllDocuments(out).map((d) => d.toJS() as Manifest).filter((m) => m && m.kind)
  const secrets = new Map<string, Record<string, string>>(
    ms.filter((m) => m.kind === 'Secret').map((s) => [s.metadata.name, s.data ?? {}])
  )
  const configMap = ms.find((m) => m.kind === 'ConfigMap')!
  const container = ms.find((m) => m.kind === 'Deployment')!.spec.template.spec.containers[0]

  const dir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-chart-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const configFile = path.join(dir, 'config.yaml')
  writeFileSync(configFile, configMap.data['config.yaml'])

  // The container's environment, as the kubelet would build it.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, TMPDIR: dir }
  for (const e of container.env as Manifest[]) {
    if ('value' in e) env[e.name] = e.value
    else {
      const ref = e.valueFrom.secretKeyRef
      const data = secrets.get(ref.name)
      if (!data || !(ref.key in data)) throw new Error(`${e.name}: Secret ${ref.name} key ${ref.key} is not rendered`)
      env[e.name] = Buffer.from(data[ref.key]!, 'base64').toString('utf8')
    }
  }
  t.equal(env.REDIS_ADDR, `127.0.0.1:${redisPort}`, 'external Redis address')
  t.equal(env.REDIS_PASSWORD, redisPassword, 'and password')
  // Only what differs in a test process: where to listen and where the ConfigMap is mounted.
  const port = await freePort()
  Object.assign(env, { HOST: '127.0.0.1', PORT: String(port), CONFIG_FILE: configFile })
  const local = `http://127.0.0.1:${port}`

  // tsx runs the TypeScript sources directly; resolved here because the child's cwd is elsewhere.
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src', 'server.ts')], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  t.teardown(() => stopProcess(child))

  t.equal(await pollOk(`${local}/healthz`, child, 60_000), 200, `the gateway starts with the chart's config\n${output}`)
  t.equal((await fetch(`${local}/readyz`)).status, 200, 'and reaches Redis at the chart-wired address')

  for (const p of proxies) {
    const r = await fetch(`${local}/.well-known/oauth-protected-resource${p.pattern}`)
    t.equal(r.status, 200, `${p.pattern} is a route`)
    const doc = (await r.json()) as Record<string, unknown>
    t.equal(doc.resource, `${base}${p.pattern}`, 'resource is BASE_URL + pattern')
    t.same(doc.authorization_servers, [base])
  }
  t.same(
    ((await (await fetch(`${local}/.well-known/oauth-protected-resource/files/mcp`)).json()) as Record<string, unknown>).scopes_supported,
    ['mcp', 'files'],
    'per-route scopes reach the gateway'
  )

  const unauth = await fetch(`${local}/calc/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
  })
  t.equal(unauth.status, 401, 'a route without a token is refused')
  t.match(unauth.headers.get('www-authenticate') ?? '', `resource_metadata="${base}/.well-known/oauth-protected-resource/calc/mcp"`)

  await stopProcess(child)
}

async function waitForPort (port: number, child: ChildProcess, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline && child.exitCode === null) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.end(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (open) return true
    await sleep(100)
  }
  return false
}
