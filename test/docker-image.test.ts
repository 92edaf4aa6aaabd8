// No Docker engine runs here, so this reproduces the image's steps in a temporary folder:
// a production install without dev dependencies plus the compiled dist/, then starts the gateway
// from there as the image would and checks /healthz, the metadata endpoint that `helm test`
// fetches, and the Dockerfile's HEALTHCHECK command itself.
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, pollOk, stopProcess } from './helper.js'

// A production npm install and a TypeScript build take longer than .taprc's default timeout.
t.setTimeout(300_000)

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8')
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))

t.test('Dockerfile shape', async (t) => {
  const froms = dockerfile.match(/^FROM .*/gm) ?? []
  t.ok(froms.length >= 2, 'multi-stage')
  t.match(dockerfile, /^ARG NODE_IMAGE=node:\d+-slim$/m, 'Node on a slim base')
  t.match(dockerfile, /npm ci --omit=dev/, 'production install')
  t.match(dockerfile, /npm run build/)
  // The final stage copies package.json (for "type": "module"), production node_modules and dist/.
  const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  t.same(final.match(/^COPY .*/gm), [
    'COPY package.json ./',
    'COPY --from=deps /app/node_modules ./node_modules',
    'COPY --from=build /app/dist ./dist',
  ], 'compiled output only in the final image')
  t.match(dockerfile, /^USER 1000:1000$/m)
  t.match(dockerfile, /^EXPOSE 8080$/m)
  t.match(dockerfile, /^CMD \["node", "dist\/server\.js"\]$/m)
  const dockerignore = readFileSync(path.join(root, '.dockerignore'), 'utf8')
  t.match(dockerignore, /^\*\*$/m, '.dockerignore starts from nothing')
})

// The gateway core provides src/server.ts; without it there is nothing to start.
const hasServer = existsSync(path.join(root, 'src', 'server.ts'))

t.test('the image steps produce a gateway that starts', { skip: !hasServer && 'src/server.ts is not there yet' }, async (t) => {
  // Build as the image's build stage does.
  const build = pkg.scripts?.build ? ['npm', ['run', 'build']] : ['npx', ['tsc', '-p', 'tsconfig.json']]
  execFileSync(build[0] as string, build[1] as string[], { cwd: root, stdio: 'pipe', timeout: 180_000 })
  t.ok(existsSync(path.join(root, 'dist', 'server.js')), 'dist/server.js built')

  const app = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-image-'))
  const tmp = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-tmp-'))
  t.teardown(() => {
    rmSync(app, { recursive: true, force: true })
    rmSync(tmp, { recursive: true, force: true })
  })

  // The deps stage.
  for (const f of ['package.json', 'package-lock.json']) cpSync(path.join(root, f), path.join(app, f))
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: app,
    stdio: 'pipe',
    timeout: 300_000,
  })
  for (const dev of Object.keys(pkg.devDependencies ?? {})) {
    t.notOk(existsSync(path.join(app, 'node_modules', dev)), `dev dependency ${dev} not installed`)
  }
  // The final stage: compiled output next to the production node_modules.
  cpSync(path.join(root, 'dist'), path.join(app, 'dist'), { recursive: true })
  const sources = readdirSync(path.join(app, 'dist'), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  t.same(sources, [], 'no TypeScript sources')

  writeFileSync(
    path.join(app, 'config.yaml'),
    'proxies:\n  - pattern: "/calc/mcp"\n    target_url: "http://127.0.0.1:9/mcp"\n'
  )
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  // The same kinds of keys the chart generates: an EC P-256 key in SEC1 PEM, 32 bytes base64.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: tmp,
    TMPDIR: tmp,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    BASE_URL: base,
    CONFIG_FILE: path.join(app, 'config.yaml'),
    TRUST_PROXY: 'true',
    LOG_LEVEL: 'warn',
    OAUTH_GOOGLE_CLIENT_ID: 'test-client.apps.googleusercontent.com',
    OAUTH_GOOGLE_CLIENT_SECRET: 'test-secret',
    JWT_SIGNING_KEY: privateKey.export({ format: 'pem', type: 'sec1' }).toString(),
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  }
  const before = listFiles(app)

  const child = spawn(process.execPath, ['dist/server.js'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  t.teardown(() => stopProcess(child))

  const health = await pollOk(`${base}/healthz`, child, 20_000)
  t.equal(health, 200, `/healthz answers 200\n${output}`)

  // What the chart's `helm test` pod checks.
  const meta = await fetch(`${base}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(5_000) })
  t.equal(meta.status, 200, 'authorization server metadata is served')
  const doc = (await meta.json()) as Record<string, unknown>
  t.equal(doc.issuer, base)
  t.equal(doc.token_endpoint, `${base}/oauth/token`)
  // Served by every build: the route's protected-resource document names the gateway.
  const prm = await fetch(`${base}/.well-known/oauth-protected-resource/calc/mcp`, { signal: AbortSignal.timeout(5_000) })
  t.equal(prm.status, 200, 'protected-resource metadata of the configured route')
  t.equal(((await prm.json()) as Record<string, unknown>).resource, `${base}/calc/mcp`)

  // The Dockerfile's HEALTHCHECK, run as Docker would run it inside the container.
  const hc = JSON.parse(/^\s*CMD (\[.*\])$/m.exec(dockerfile.slice(dockerfile.indexOf('HEALTHCHECK')))![1]!) as string[]
  t.equal(hc[0], 'node')
  execFileSync(process.execPath, hc.slice(1), { env: { ...env }, timeout: 10_000 })
  t.pass('HEALTHCHECK command exits 0')

  await stopProcess(child)
  t.same(listFiles(app), before, 'nothing written outside /tmp (read-only root filesystem)')
})

function listFiles (dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).sort()
}
