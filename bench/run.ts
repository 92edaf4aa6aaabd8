/**
 * `npm run bench`: the same upstream measured directly, through nginx (plain reverse proxy, one
 * worker, upstream keepalive), through the Node ceiling (node-ceiling.ts: the smallest Node proxy)
 * and through the gateway (full authentication, metrics, request
 * log), in interleaved rounds so the ratios share the machine's noise; then the gateway's
 * `/oauth/token` refresh grants per second (clients logged in through the test fixtures and a
 * local oidc-provider). wrk (one thread) is the load generator, in its own process on core 0;
 * the proxy under test and the upstream share core 1. Loopback only; every load is bounded by
 * wrk's duration (the refresh loop by its time and grant count) and the whole run by a
 * deadline. Prints the table and writes bench/results.md; exits 0 unless the bench broke.
 *
 * BENCH_QUICK=1 runs one short round (BENCH_ROUNDS=<n> for more) and writes nothing; BENCH_CPU_PROF=<dir> makes the gateway
 * write a V8 CPU profile there (open it in Chrome DevTools) when it exits.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, request, Agent as HttpAgent } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startOidcIdp } from '../test/fixtures/oidc-provider.js'
import { TestBrowser } from '../test/fixtures/browser.js'
import { TestOAuthClient } from '../test/fixtures/oauth-client.js'
import { REDIRECT, startLogin, tokenRequest } from '../test/fixtures/authorization.js'
import { measureRedisModes } from './redis-modes.js'

const HOST = '127.0.0.1'
/** BENCH_QUICK=1: one short round, for trying a change (not for the record). */
const QUICK = process.env.BENCH_QUICK === '1'
/** BENCH_ROUNDS=<n>: more rounds for a quick run on a noisy machine (the ratios need several). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 5))
const LOAD_SECONDS = QUICK ? 4 : 5
const LATENCY_SECONDS = 3
const PACED_SECONDS = 2
/**
 * Added latency is read at 10 connections paced by this think time (at most ~500 req/s), well
 * under every target's capacity: at saturation p50 is connections ÷ throughput, a second reading
 * of throughput rather than of what one request pays for the proxy.
 */
const THINK_MS = 20
const WARMUP_SECONDS = QUICK ? 1 : 2
const CONNECTIONS = 50
const LATENCY_CONNECTIONS = 10
const SSE_STREAMS = QUICK ? 5 : 25
const SSE = { firstDelayMs: 20, events: 10, gapMs: 10 }
/** Refresh grants: this many token families rotating side by side, for this long, at most this many grants. */
const REFRESH_FAMILIES = 4
const REFRESH_SECONDS = 5
const REFRESH_MAX_GRANTS = 50_000
/** The run must end within this deadline (about 8 minutes) even if a step hangs. */
// The policy route adds about a minute, the Redis modes (redis-modes.ts) another: their
// topologies and four refresh loops.
// The node-ceiling and Fastify-floor targets about another minute each.
const DEADLINE_MS = 290_000 + 90_000 + 60_000 + 60_000

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..')
const work = mkdtempSync(join(tmpdir(), 'mcpgw-bench-'))
const children: ChildProcess[] = []
const deadline = setTimeout(() => fail(`the bench did not finish within ${DEADLINE_MS / 1000} s`), DEADLINE_MS)
deadline.unref()

/**
 * ceiling: node:http + one undici Pool, bodies buffered, nothing else (what any Node proxy reaches
 * here); floor: Fastify and the gateway's relay, nothing else (what the gateway reaches if its
 * features cost nothing); policy: the same gateway, a route with tool rules (every body read strictly, each call
 * decided); traced: the gateway tracing every request to an OTLP sink.
 */
type TargetName = 'direct' | 'nginx' | 'ceiling' | 'floor' | 'gateway' | 'policy' | 'traced'
const TARGETS: TargetName[] = ['direct', 'nginx', 'ceiling', 'floor', 'gateway', 'policy', 'traced']

interface WrkResult { requests: number, seconds: number, errors: number, p50: number, p99: number }
interface Sample extends WrkResult { rps: number, cpuUs: number, upstreamCpuUs: number, rssMb: number }

function fail (message: string): never {
  console.error(`bench failed: ${message}`)
  cleanup()
  process.exit(1)
}

function cleanup (): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  rmSync(work, { recursive: true, force: true })
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

function has (command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const installed = (bin: string): boolean => has(bin) || existsSync(`/usr/sbin/${bin}`)

/**
 * wrk and nginx come from Debian's packages; installed once, left in place. wrk is required;
 * without nginx (no root, no network) the bench runs without that target and says so.
 * Returns whether nginx is there.
 */
function ensureTools (): boolean {
  const missing = [['wrk', 'wrk'], ['nginx', 'nginx-light']].filter(([bin]) => !installed(bin)).map(([, pkg]) => pkg)
  if (missing.length > 0) {
    console.log(`installing ${missing.join(', ')} from Debian's packages…`)
    try {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    } catch {
      if (!installed('wrk')) fail(`could not install ${missing.join(', ')}: run \`apt-get install -y ${missing.join(' ')}\` as root`)
      console.log('nginx could not be installed: the nginx target and the figures against it are skipped')
    }
  }
  return installed('nginx')
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

const pinning = has('taskset') && availableParallelism() >= 2
/** Proxy and upstream on core 1; wrk and this script on core 0. */
const onCore = (core: number, argv: string[]): string[] => pinning ? ['taskset', '-c', String(core), ...argv] : argv

function start (argv: string[], opts: { stdout?: number, env?: NodeJS.ProcessEnv, ipc?: boolean } = {}): ChildProcess {
  const child = spawn(argv[0], argv.slice(1), {
    cwd: root,
    env: opts.env ?? process.env,
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe', ...(opts.ipc === true ? ['ipc' as const] : [])]
  })
  children.push(child)
  let err = ''
  child.stderr?.on('data', (chunk: Buffer) => { err = (err + chunk.toString()).slice(-4000) })
  child.once('exit', (code, signal) => {
    if (!stopping) fail(`${argv.join(' ')} exited (${code ?? signal}) ${err}`)
  })
  return child
}
let stopping = false

async function waitForPort (port: number, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const open = await new Promise<boolean>(resolve => {
      const req = request({ host: HOST, port, method: 'HEAD', path: '/' }, res => { res.resume(); resolve(true) })
      req.once('error', () => resolve(false))
      req.end()
    })
    if (open) return
    await sleep(50)
  }
  fail(`${what} did not start listening on ${port}`)
}

// --- /proc readings -------------------------------------------------------------------------

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim())

/** The process and its children (nginx's worker), which is what a proxy costs. */
function family (pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    return [pid, ...(kids === '' ? [] : kids.split(' ').map(Number))]
  } catch {
    return [pid]
  }
}

function cpuSeconds (pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks / CLK_TCK
}

function rssMb (pids: number[]): number {
  let kb = 0
  for (const pid of pids) {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    if (match !== null) kb += Number(match[1])
  }
  return kb / 1024
}

// --- load -----------------------------------------------------------------------------------

const CALL = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'add', arguments: { a: 2, b: 3 } } })

function wrkScript (name: string, headers: Record<string, string>, thinkMs = 0): string {
  const lua = [
    'wrk.method = "POST"',
    `wrk.body = '${CALL}'`,
    ...Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`),
    ...(thinkMs > 0 ? [`delay = function() return ${thinkMs} end`] : []),
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("BENCH %d %d %d %d %d\\n", summary.requests, summary.duration,',
    '    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))',
    'end'
  ].join('\n')
  const file = join(work, `${name}.lua`)
  writeFileSync(file, lua)
  return file
}

async function wrk (url: string, script: string, connections: number, seconds: number): Promise<WrkResult> {
  const argv = onCore(0, ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '2s', '-s', script, url])
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  const line = /^BENCH (\d+) (\d+) (\d+) (\d+) (\d+)$/m.exec(out)
  if (code !== 0 || line === null) fail(`wrk against ${url} failed: ${out}`)
  const [requests, durationUs, errors, p50, p99] = line.slice(1).map(Number)
  return { requests, seconds: durationUs / 1e6, errors, p50: p50 / 1000, p99: p99 / 1000 }
}

interface Target { name: TargetName, url: string, script: string, paced: string, pids: () => number[] }

/** One bounded load with the proxy's CPU time and peak RSS read around and during it. */
async function measure (target: Target, upstreamPid: number, connections: number, seconds: number, script = target.script): Promise<Sample> {
  const pids = target.pids()
  const cpu0 = pids.length > 0 ? cpuSeconds(pids) : 0
  const up0 = cpuSeconds([upstreamPid])
  let peak = 0
  const sampler = setInterval(() => { if (pids.length > 0) peak = Math.max(peak, rssMb(pids)) }, 250)
  const result = await wrk(target.url, script, connections, seconds)
  clearInterval(sampler)
  const cpu = pids.length > 0 ? cpuSeconds(pids) - cpu0 : 0
  const upstreamCpu = cpuSeconds([upstreamPid]) - up0
  return {
    ...result,
    rps: result.requests / result.seconds,
    cpuUs: (cpu / result.requests) * 1e6,
    upstreamCpuUs: (upstreamCpu / result.requests) * 1e6,
    rssMb: peak
  }
}

// --- SSE ------------------------------------------------------------------------------------

interface StreamTiming { headersMs: number, firstEventMs: number, gapsMs: number[] }

const sseAgent = new HttpAgent({ keepAlive: true, maxSockets: 1 })

/** Times one SSE answer: when its headers, its first event and each later event arrive. */
async function timeStream (port: number, path: string, headers: Record<string, string>): Promise<StreamTiming> {
  return await new Promise((resolve, reject) => {
    const times: number[] = []
    let headersAt = 0
    let pending = ''
    const t0 = performance.now()
    const req = request({ host: HOST, port, path, method: 'POST', agent: sseAgent, headers: { ...headers, 'content-length': Buffer.byteLength(CALL) } }, res => {
      headersAt = performance.now()
      if (res.statusCode !== 200) reject(new Error(`SSE ${path} answered ${res.statusCode}`))
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const now = performance.now()
        pending += chunk
        let end: number
        while ((end = pending.indexOf('\n\n')) !== -1) {
          times.push(now)
          pending = pending.slice(end + 2)
        }
      })
      res.once('end', () => {
        if (times.length !== SSE.events) reject(new Error(`SSE ${path}: ${times.length} events, expected ${SSE.events}`))
        resolve({ headersMs: headersAt - t0, firstEventMs: times[0] - t0, gapsMs: times.slice(1).map((t, i) => t - times[i]) })
      })
    })
    req.setTimeout(5000, () => req.destroy(new Error(`SSE ${path} timed out`)))
    req.once('error', reject)
    req.end(CALL)
  })
}

// --- refresh grants -------------------------------------------------------------------------

interface RefreshFigures { grants: number, seconds: number, errors: number, p50: number, p99: number }

/**
 * `/oauth/token` refresh grants per second: each family (a client logged in once through the
 * test fixtures: DCR, the OIDC provider, consent) rotates its refresh token one grant at a time,
 * as a real client does (a concurrent reuse is refused), the families side by side. Each grant
 * comes from its own X-Forwarded-For address so that the per-client-and-IP limit (120 a minute)
 * is not what gets measured; the limiter's Redis counter is still paid.
 */
async function measureRefresh (base: string): Promise<RefreshFigures> {
  const browser = new TestBrowser()
  const families: Array<{ clientId: string, refreshToken: string }> = []
  for (let i = 0; i < REFRESH_FAMILIES; i++) {
    const client = new TestOAuthClient(REDIRECT, { name: `bench client ${i}` })
    const transport = await startLogin(`${base}/bench/mcp`, client)
    await transport.finishAuth((await browser.authorize((client.authorizationUrl as URL).href, REDIRECT)).searchParams.get('code') as string)
    families.push({ clientId: client.clientInformation()?.client_id as string, refreshToken: client.tokens()?.refresh_token as string })
  }
  const latencies: number[] = []
  let errors = 0
  const t0 = performance.now()
  const end = t0 + REFRESH_SECONDS * 1000
  await Promise.all(families.map(async family => {
    while (performance.now() < end && latencies.length < REFRESH_MAX_GRANTS) {
      const n = latencies.length
      const start = performance.now()
      const answer = await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: family.refreshToken, client_id: family.clientId }, { 'x-forwarded-for': `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` })
      latencies.push(performance.now() - start)
      // A refused grant ends its family: its token is spent.
      if (answer.status !== 200) {
        errors++
        break
      }
      family.refreshToken = answer.body.refresh_token as string
    }
  }))
  const seconds = (performance.now() - t0) / 1000
  return { grants: latencies.length - errors, seconds, errors, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
}

// --- Redis ----------------------------------------------------------------------------------

function redisCommands (port: number): number {
  const info = execFileSync('redis-cli', ['-h', HOST, '-p', String(port), 'INFO', 'commandstats']).toString()
  let calls = 0
  for (const match of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
    // The bench's own INFO calls are not the gateway's.
    if (match[1] !== 'info') calls += Number(match[2])
  }
  return calls
}

async function waitForRedis (port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (spawnSync('redis-cli', ['-h', HOST, '-p', String(port), 'PING'], { encoding: 'utf8' }).stdout?.trim() === 'PONG') return
    await sleep(50)
  }
  fail(`redis-server did not start on ${port}`)
}

/**
 * The gateway runs as production does, compiled JavaScript on plain node: tsx's loader alone
 * adds about 34 MB of RSS. Output goes to bench/tmp (ignored), inside the project so that
 * node_modules and the package's "type": "module" apply.
 */
function compile (): string {
  const out = join(here, 'tmp', 'build')
  rmSync(out, { recursive: true, force: true })
  console.log('compiling the gateway…')
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), [
    '--outDir', out, '--rootDir', root, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
    '--strict', '--esModuleInterop', '--skipLibCheck', '--resolveJsonModule',
    join(here, 'gateway-process.ts'), join(here, 'upstream.ts'), join(here, 'node-ceiling.ts'), join(here, 'fastify-floor.ts')
  ], { cwd: root, stdio: 'inherit' })
  return join(out, 'bench')
}

// --- main -----------------------------------------------------------------------------------

async function main (): Promise<void> {
  const withNginx = ensureTools()
  if (pinning) execFileSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' })
  const [upstreamPort, nginxPort, gatewayPort, redisPort, ceilingPort, floorPort, tracedPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort()]
  const build = compile()

  start(onCore(1, ['redis-server', '--port', String(redisPort), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', work, '--loglevel', 'warning']))
  await waitForRedis(redisPort)
  const upstream = start(onCore(1, [process.execPath, join(build, 'upstream.js'), String(upstreamPort), String(SSE.firstDelayMs), String(SSE.events), String(SSE.gapMs)]))
  await new Promise<void>(resolve => upstream.stdout?.once('data', () => resolve()))

  writeFileSync(join(work, 'nginx.conf'), `
daemon off;
worker_processes 1;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log ${work}/nginx-access.log;
  client_body_temp_path ${work}/client_body;
  proxy_temp_path ${work}/proxy;
  upstream mcp { server ${HOST}:${upstreamPort}; keepalive 64; }
  server {
    listen ${HOST}:${nginxPort};
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  const ceiling = start(onCore(1, [process.execPath, join(build, 'node-ceiling.js'), String(ceilingPort), `http://${HOST}:${upstreamPort}`, '/mcp']))
  await new Promise<void>(resolve => ceiling.stdout?.once('data', () => resolve()))
  const floor = start(onCore(1, [process.execPath, join(build, 'fastify-floor.js'), String(floorPort), `http://${HOST}:${upstreamPort}`, '/mcp']))
  await new Promise<void>(resolve => floor.stdout?.once('data', () => resolve()))
  const nginx = withNginx ? start(onCore(1, ['nginx', '-p', work, '-e', join(work, 'nginx-error.log'), '-c', join(work, 'nginx.conf')])) : null

  const logFile = join(work, 'gateway.log')
  const logFd = openSync(logFile, 'w')
  // Stands in for Google when the refresh bench logs its clients in; idle during the proxy loads.
  const idp = await startOidcIdp(`http://${HOST}:${gatewayPort}`)
  const gatewayEnv = {
    ...process.env,
    BENCH_PORT: String(gatewayPort),
    BENCH_UPSTREAM: `http://${HOST}:${upstreamPort}`,
    REDIS_URL: `redis://${HOST}:${redisPort}`,
    NODE_ENV: 'production',
    OAUTH_OIDC_ISSUER: idp.issuer,
    OAUTH_OIDC_CLIENT_ID: idp.clientId,
    OAUTH_OIDC_CLIENT_SECRET: idp.clientSecret
  }
  const gateway = start(onCore(1, [process.execPath, ...(process.env.BENCH_CPU_PROF !== undefined ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), join(build, 'gateway-process.js')]), { stdout: logFd, env: gatewayEnv, ipc: true })
  const hello = await new Promise<{ tokens: Record<string, string> }>(resolve => gateway.once('message', m => resolve(m as never)))
  // traced: a second gateway process tracing every request (sampling 1.0) to an OTLP/HTTP sink
  // in this process that only counts the batches; its log goes to the same file.
  let spanBatches = 0
  const sink = createHttpServer((req, res) => { req.resume().once('end', () => { spanBatches++; res.writeHead(200, { 'content-type': 'application/json' }).end('{}') }) })
  await new Promise<void>(resolve => sink.listen(0, HOST, resolve))
  const traced = start(onCore(1, [process.execPath, join(build, 'gateway-process.js')]), {
    stdout: logFd,
    env: { ...gatewayEnv, BENCH_PORT: String(tracedPort), BENCH_OTLP: `http://${HOST}:${(sink.address() as AddressInfo).port}` },
    ipc: true
  })
  const tracedHello = await new Promise<{ tokens: Record<string, string> }>(resolve => traced.once('message', m => resolve(m as never)))
  closeSync(logFd)
  if (nginx !== null) await waitForPort(nginxPort, 'nginx')

  const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }
  // Every MCP call after initialize carries the session id; through the gateway that id is the
  // HMAC-bound one the gateway handed out, so the session check runs on every request.
  const sessionOf = async (port: number, path: string, extra: Record<string, string>): Promise<string> => {
    const res = await fetch(`http://${HOST}:${port}${path}`, { method: 'POST', headers: { ...mcpHeaders, ...extra }, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: {} }) })
    await res.text()
    const id = res.headers.get('mcp-session-id')
    if (res.status !== 200 || id === null) fail(`initialize on ${port}${path} answered ${res.status} without a session id`)
    return id
  }
  const auth = { authorization: `Bearer ${hello.tokens['/bench/mcp']}` }
  const target = (name: TargetName, port: number, path: string, extra: Record<string, string>, pids: () => number[]) => async (): Promise<Target> => {
    const headers = { ...mcpHeaders, ...extra, 'mcp-session-id': await sessionOf(port, path, extra) }
    return { name, url: `http://${HOST}:${port}${path}`, script: wrkScript(name, headers), paced: wrkScript(`${name}-paced`, headers, THINK_MS), pids }
  }
  const targets: Target[] = [
    await target('direct', upstreamPort, '/mcp', {}, () => [])(),
    ...(nginx !== null ? [await target('nginx', nginxPort, '/mcp', {}, () => family(nginx.pid as number))()] : []),
    await target('ceiling', ceilingPort, '/mcp', {}, () => [ceiling.pid as number])(),
    await target('floor', floorPort, '/mcp', {}, () => [floor.pid as number])(),
    await target('gateway', gatewayPort, '/bench/mcp', auth, () => [gateway.pid as number])(),
    await target('policy', gatewayPort, '/policy/mcp', { authorization: `Bearer ${hello.tokens['/policy/mcp']}` }, () => [gateway.pid as number])(),
    await target('traced', tracedPort, '/bench/mcp', { authorization: `Bearer ${tracedHello.tokens['/bench/mcp']}` }, () => [traced.pid as number])()
  ]
  const upstreamPid = upstream.pid as number
  const idleRss = rssMb([gateway.pid as number])

  console.log(`warming up (${WARMUP_SECONDS} s each)…`)
  for (const target of targets) await wrk(target.url, target.script, CONNECTIONS, WARMUP_SECONDS)

  const load: Record<TargetName, Sample[]> = { direct: [], nginx: [], ceiling: [], floor: [], gateway: [], policy: [], traced: [] }
  const light: Record<TargetName, Sample[]> = { direct: [], nginx: [], ceiling: [], floor: [], gateway: [], policy: [], traced: [] }
  const paced: Record<TargetName, Sample[]> = { direct: [], nginx: [], ceiling: [], floor: [], gateway: [], policy: [], traced: [] }
  let gatewayRequests = 0
  const redisBefore = redisCommands(redisPort)
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order so no target always runs right after the same neighbour.
    const order = targets.map((_, i) => targets[(i + round) % targets.length])
    for (const target of order) {
      const s = await measure(target, upstreamPid, CONNECTIONS, LOAD_SECONDS)
      load[target.name].push(s)
      console.log(`round ${round + 1} ${target.name.padEnd(7)} c${CONNECTIONS}: ${s.rps.toFixed(0)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, ${s.errors} errors`)
    }
    for (const target of order) {
      const s = await measure(target, upstreamPid, LATENCY_CONNECTIONS, LATENCY_SECONDS)
      light[target.name].push(s)
      console.log(`round ${round + 1} ${target.name.padEnd(7)} c${LATENCY_CONNECTIONS}: ${s.rps.toFixed(0)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, ${s.errors} errors`)
    }
    for (const target of order) {
      const s = await measure(target, upstreamPid, LATENCY_CONNECTIONS, PACED_SECONDS, target.paced)
      paced[target.name].push(s)
      console.log(`round ${round + 1} ${target.name.padEnd(7)} c${LATENCY_CONNECTIONS} paced: ${s.rps.toFixed(0)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, ${s.errors} errors`)
    }
  }
  for (const s of [...load.gateway, ...light.gateway, ...paced.gateway, ...load.policy, ...light.policy, ...paced.policy]) gatewayRequests += s.requests
  const redisPerRequest = (redisCommands(redisPort) - redisBefore) / gatewayRequests

  console.log(`SSE: ${SSE_STREAMS} streams per target (first event after ${SSE.firstDelayMs} ms, ${SSE.events} events ${SSE.gapMs} ms apart)…`)
  const sse: Record<'direct' | 'gateway', StreamTiming[]> = { direct: [], gateway: [] }
  const sseHeaders = { ...mcpHeaders, accept: 'application/json, text/event-stream' }
  for (let i = 0; i < SSE_STREAMS; i++) {
    sse.direct.push(await timeStream(upstreamPort, '/sse', sseHeaders))
    sse.gateway.push(await timeStream(gatewayPort, '/sse/mcp', { ...sseHeaders, authorization: `Bearer ${hello.tokens['/sse/mcp']}` }))
  }

  console.log(`refresh grants: ${REFRESH_FAMILIES} families for ${REFRESH_SECONDS} s…`)
  const refresh = await measureRefresh(`http://${HOST}:${gatewayPort}`)
  await idp.close()
  const redisModes = await measureRedisModes({ build, upstreamOrigin: `http://${HOST}:${upstreamPort}`, onCore, measureRefresh })

  stopping = true
  for (const child of [gateway, traced]) {
    child.kill('SIGTERM')
    await new Promise(resolve => child.once('exit', resolve))
  }
  sink.close()
  const logLines = readFileSync(logFile, 'utf8').split('\n').filter(l => l.includes('"msg":"request"')).length

  sseAgent.destroy()
  report({ load, light, paced, sse, idleRss, redisPerRequest, gatewayRequests, logLines, refresh, redisModes, spanBatches })
}

// --- report ---------------------------------------------------------------------------------

interface Findings {
  load: Record<TargetName, Sample[]>
  light: Record<TargetName, Sample[]>
  paced: Record<TargetName, Sample[]>
  sse: Record<'direct' | 'gateway', StreamTiming[]>
  idleRss: number
  redisPerRequest: number
  gatewayRequests: number
  logLines: number
  refresh: RefreshFigures
  redisModes: Array<{ mode: string, refresh: RefreshFigures }>
  /** OTLP batches the traced gateway sent. */
  spanBatches: number
}

function report (f: Findings): void {
  const med = (samples: Sample[], key: keyof Sample): number => median(samples.map(s => s[key]))
  /** Ratios are taken within each round, then the median over rounds. */
  const ratio = (a: TargetName, b: TargetName, key: keyof Sample, set = f.load): number => median(set[a].map((s, i) => s[key] / set[b][i][key]))
  // A figure against a target that did not run (nginx not installed) is NaN: shown as a dash.
  const fmt = (n: number, digits = 0): string => Number.isFinite(n) ? n.toFixed(digits) : '—'
  const signed = (n: number, digits = 0): string => `${n >= 0 ? '+' : ''}${fmt(n, digits)}`

  const withNginx = f.load.nginx.length > 0
  const rows = TARGETS.filter(name => f.load[name].length > 0).map(name => {
    const l = f.load[name]
    const c10 = f.light[name]
    const p10 = f.paced[name]
    const errors = [...l, ...c10, ...p10].reduce((n, s) => n + s.errors, 0)
    return `| ${name} | ${fmt(med(l, 'rps'))} | ${fmt(med(l, 'p50'), 2)} | ${fmt(med(l, 'p99'), 2)} | ${fmt(med(c10, 'rps'))} | ${fmt(med(c10, 'p50'), 2)} | ${fmt(med(p10, 'p50'), 2)} | ${fmt(med(p10, 'p99'), 2)} | ${name === 'direct' ? '—' : fmt(med(l, 'cpuUs'))} | ${fmt(med(l, 'upstreamCpuUs'))} | ${name === 'direct' ? '—' : fmt(Math.max(...l.map(s => s.rssMb)))} | ${errors} |`
  })
  const vsNginx = ratio('gateway', 'nginx', 'rps')
  const vsDirect = ratio('gateway', 'direct', 'rps')
  const addedP50 = median(f.paced.gateway.map((s, i) => s.p50 - f.paced.direct[i].p50))
  const addedP50Saturated = median(f.light.gateway.map((s, i) => s.p50 - f.light.direct[i].p50))
  const firstDirect = median(f.sse.direct.map(s => s.firstEventMs))
  const firstGateway = median(f.sse.gateway.map(s => s.firstEventMs))
  const gapDirect = median(f.sse.direct.flatMap(s => s.gapsMs))
  const gapGateway = median(f.sse.gateway.flatMap(s => s.gapsMs))
  const headersDirect = median(f.sse.direct.map(s => s.headersMs))
  const headersGateway = median(f.sse.gateway.map(s => s.headersMs))
  const peakRss = Math.max(...f.load.gateway.map(s => s.rssMb), ...f.load.policy.map(s => s.rssMb))
  const vsCeiling = ratio('gateway', 'ceiling', 'rps')
  const cpuVsCeiling = ratio('gateway', 'ceiling', 'cpuUs')
  const policyVsCeiling = ratio('policy', 'ceiling', 'rps')
  const addedOverNginx = median(f.paced.gateway.map((s, i) => s.p50 - f.paced.nginx[i].p50))
  const verdict = (ok: boolean): string => ok ? 'PASS' : 'FAIL'
  const targets = [
    `| gateway throughput ≥ 0.85× the Node ceiling (c${CONNECTIONS}) | ${fmt(vsCeiling, 2)}× | ${verdict(vsCeiling >= 0.85)} |`,
    `| gateway CPU per request ≤ 1.2× the Node ceiling's | ${fmt(cpuVsCeiling, 2)}× | ${verdict(cpuVsCeiling <= 1.2)} |`,
    `| policy route throughput ≥ 0.75× the Node ceiling (c${CONNECTIONS}) | ${fmt(policyVsCeiling, 2)}× | ${verdict(policyVsCeiling >= 0.75)} |`,
    `| unloaded added p50 over nginx ≤ 0.1 ms (c${LATENCY_CONNECTIONS} paced, ${THINK_MS} ms think time) | ${signed(addedOverNginx, 2)} ms (over direct ${signed(addedP50, 2)} ms; saturated c${LATENCY_CONNECTIONS} over direct ${signed(addedP50Saturated, 2)} ms) | ${withNginx ? verdict(addedOverNginx <= 0.1) : 'SKIPPED (nginx not installed)'} |`,
    `| SSE headers ≤ 1 ms after direct | ${signed(headersGateway - headersDirect, 2)} ms | ${verdict(headersGateway - headersDirect <= 1)} |`,
    `| SSE first event ≤ 1 ms after direct | ${signed(firstGateway - firstDirect, 2)} ms | ${verdict(firstGateway - firstDirect <= 1)} |`,
    `| SSE events forwarded one by one (inter-event gap as direct's) | ${fmt(gapGateway, 2)} ms vs ${fmt(gapDirect, 2)} ms | ${verdict(Math.abs(gapGateway - gapDirect) <= 1)} |`,
    `| gateway RSS under load ≤ 100 MB (c${CONNECTIONS}) | ${fmt(peakRss)} MB | ${verdict(peakRss <= 100)} |`,
    `| no network round trip but the upstream's (Redis commands per proxied request) | ${f.redisPerRequest.toFixed(4)} | ${verdict(f.redisPerRequest < 0.001)} |`,
    `| \`/oauth/token\` refresh grants per second with Redis (${REFRESH_FAMILIES} families) | ${fmt(f.refresh.grants / f.refresh.seconds)} grants/s, p50 ${fmt(f.refresh.p50, 2)} ms, p99 ${fmt(f.refresh.p99, 2)} ms | ${f.refresh.errors === 0 ? 'measured (no target)' : 'FAIL (grants refused)'} |`
  ]
  const cpuName = cpus()[0]?.model ?? 'unknown CPU'
  const body = [
    '# Bench results',
    '',
    `${new Date().toISOString()} · ${cpus().length} CPUs (${cpuName}) · Node ${process.version} · ${withNginx ? version('nginx', '-v') : 'no nginx'} · ${version('wrk', '-v')}`,
    `${ROUNDS} interleaved rounds × ${TARGETS.length} targets: ${LOAD_SECONDS} s at ${CONNECTIONS} connections, then ${LATENCY_SECONDS} s at ${LATENCY_CONNECTIONS} as fast as they go, then ${PACED_SECONDS} s at ${LATENCY_CONNECTIONS} paced (${THINK_MS} ms think time per connection); medians over rounds.`,
    pinning ? 'wrk (1 thread) on core 0; proxy and upstream on core 1 (taskset).' : 'Not pinned (taskset missing or one core): expect more noise.',
    'Gateway (and policy): ES256 bearer verified with audience check, Mcp-Session-Id binding checked (HMAC, verified values remembered), metrics on, one info log line per request to a file, Redis store.',
    'nginx: 1 worker, upstream keepalive 64, access log to a file.',
    'ceiling: node:http + one undici Pool (bench/node-ceiling.ts), bodies buffered, no auth, no logs, no metrics.',
    'floor: Fastify routing one route to the gateway\'s relay (bench/fastify-floor.ts: undici dispatch, answers buffered), no auth, no logs, no metrics, no hooks.',
    'policy: the same gateway process, a route with tool rules (allow and deny globs): every body read strictly (UTF-8 check, JSON parse), the tools/call decided, the answer parsed for the audit outcome.',
    '',
    `| target | req/s c${CONNECTIONS} | p50 ms | p99 ms | req/s c${LATENCY_CONNECTIONS} | p50 ms | paced c${LATENCY_CONNECTIONS} p50 ms | paced p99 ms | proxy CPU µs/req | upstream CPU µs/req | proxy peak RSS MB | errors |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Ratios (per round, median): gateway/ceiling ${fmt(vsCeiling, 2)} · floor/ceiling ${fmt(ratio('floor', 'ceiling', 'rps'), 2)} (CPU per request ${fmt(ratio('floor', 'ceiling', 'cpuUs'), 2)}×) · gateway/floor ${fmt(ratio('gateway', 'floor', 'rps'), 2)} (CPU per request ${fmt(ratio('gateway', 'floor', 'cpuUs'), 2)}×) · ceiling/nginx ${fmt(ratio('ceiling', 'nginx', 'rps'), 2)} · gateway/nginx ${fmt(vsNginx, 2)} · gateway/direct ${fmt(vsDirect, 2)} · nginx/direct ${fmt(ratio('nginx', 'direct', 'rps'), 2)} · gateway CPU per request / nginx ${fmt(ratio('gateway', 'nginx', 'cpuUs'), 2)}`,
    `Policy route against the plain route (per round, median): req/s c${CONNECTIONS} ${fmt(ratio('policy', 'gateway', 'rps'), 2)}× · CPU µs per request policy − plain ${signed(median(f.load.policy.map((s, i) => s.cpuUs - f.load.gateway[i].cpuUs)))} (CPU ratio ${fmt(ratio('policy', 'gateway', 'cpuUs'), 2)}×) · paced c${LATENCY_CONNECTIONS} p50 policy − plain ${signed(median(f.paced.policy.map((s, i) => s.p50 - f.paced.gateway[i].p50)), 2)} ms`,
    `Traced (OpenTelemetry on, sampling 1.0, OTLP/HTTP JSON batches to a local sink; ${f.spanBatches} batches) against the plain route, same requests (per round, median): req/s c${CONNECTIONS} ${fmt(ratio('traced', 'gateway', 'rps'), 2)}× · CPU µs per request traced − plain ${signed(median(f.load.traced.map((s, i) => s.cpuUs - f.load.gateway[i].cpuUs)))} · paced c${LATENCY_CONNECTIONS} p50 traced − plain ${signed(median(f.paced.traced.map((s, i) => s.p50 - f.paced.gateway[i].p50)), 2)} ms`,
    `Gateway RSS: ${fmt(f.idleRss)} MB idle, ${fmt(peakRss)} MB peak under load. Log lines written: ${f.logLines} for ${f.gatewayRequests} measured requests (plus warm-up).`,
    `SSE (median of ${SSE_STREAMS} streams): first event direct ${fmt(firstDirect, 2)} ms, gateway ${fmt(firstGateway, 2)} ms; headers direct ${fmt(headersDirect, 2)} ms, gateway ${fmt(headersGateway, 2)} ms; inter-event gap direct ${fmt(gapDirect, 2)} ms, gateway ${fmt(gapGateway, 2)} ms (upstream sends every ${SSE.gapMs} ms).`,
    `Redis commands during the gateway loads: ${fmt(f.redisPerRequest * f.gatewayRequests)} for ${f.gatewayRequests} requests.`,
    `Refresh grants (\`POST /oauth/token\` grant_type=refresh_token, Redis store, ${REFRESH_FAMILIES} token families rotating side by side for ${REFRESH_SECONDS} s): ${f.refresh.grants} grants, ${fmt(f.refresh.grants / f.refresh.seconds)} grants/s, p50 ${fmt(f.refresh.p50, 2)} ms, p99 ${fmt(f.refresh.p99, 2)} ms, ${f.refresh.errors} errors.`,
    '',
    '| target | measured | result |',
    '|---|---|---|',
    ...targets,
    '',
    'Refresh grants per Redis mode (same measurement, one gateway process each, redis-server processes on loopback; WAIT = a replica acknowledges each grant-bearing write):',
    '',
    '| Redis mode | grants/s | p50 ms | p99 ms | errors |',
    '|---|---|---|---|---|',
    ...f.redisModes.map(({ mode, refresh: r }) => `| ${mode} | ${fmt(r.grants / r.seconds)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${r.errors} |`)
  ].join('\n')
  console.log(`\n${body}\n`)

  // The hand-written "What we tried" section survives each run.
  if (QUICK) return
  const resultsFile = join(here, 'results.md')
  const previous = existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8') : ''
  const tried = previous.indexOf('## What we tried')
  writeFileSync(resultsFile, `${body}\n${tried === -1 ? '' : `\n${previous.slice(tried)}`}`)
  console.log(`written to ${resultsFile}`)
}

/** nginx and wrk print their versions on stderr, and wrk exits non-zero doing it. */
function version (cmd: string, flag: string): string {
  const out = spawnSync(cmd, [flag], { encoding: 'utf8' })
  return `${out.stdout}${out.stderr}`.trim().split('\n')[0].split(' [')[0]
}

try {
  await main()
} catch (err) {
  fail((err as Error).stack ?? String(err))
}
stopping = true
cleanup()
