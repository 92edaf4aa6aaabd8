import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'

/** tap's test object, as far as the helpers need it. */
interface Teardown { teardown: (fn: () => unknown) => void }

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** Polls `check` every 50 ms until it holds or `ms` have passed; returns whether it held. */
export async function until (check: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await check()) return true
  return await check()
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export interface RedisServer {
  url: string
  port: number
  /** SIGKILL, as a crash would. */
  kill: () => Promise<void>
  start: () => Promise<void>
}

/** A real redis-server of our own on a free loopback port; stopped at teardown. */
export async function startRedis (t: Teardown, opts: { appendonly?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'mcpgw-redis-'))
  return await redisProcess(t, port, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
    '--appendonly', opts.appendonly === true ? 'yes' : 'no', '--loglevel', 'warning'
  ])
}

/**
 * `redis-server <argv>` (a data node, a sentinel, a cluster node) answering PING on `port`;
 * start() runs it again with the same arguments after a kill; killed at teardown.
 */
export async function redisProcess (t: Teardown, port: number, argv: string[]): Promise<RedisServer> {
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    child = spawn('redis-server', argv, { stdio: 'ignore' })
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on('error', () => {}) // refused until redis-server listens: expected
    for (let i = 0; i < 100; i++) {
      try {
        await probe.connect()
        await probe.ping()
        probe.disconnect()
        return
      } catch {
        probe.disconnect()
        await sleep(50)
      }
    }
    throw new Error(`redis-server ${argv.join(' ')} did not start`)
  }
  const kill = async (): Promise<void> => {
    const running = child
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise(resolve => running.once('exit', resolve))
    running.kill('SIGKILL')
    await exited
  }
  await start()
  t.teardown(kill)
  return { url: `redis://127.0.0.1:${port}`, port, kill, start }
}

export interface GatewayOptions {
  env?: Record<string, string | undefined>
  config?: unknown
  /** Listen on a real port (BASE_URL then points at it, unless env sets it). */
  listen?: boolean
  /** The port to listen on; a free one when absent. */
  port?: number
  /** Collect log lines here instead of silencing the log. */
  logLines?: string[]
}

/** The gateway under test, built through the same buildApp as production. */
export async function buildGateway (t: Teardown, opts: GatewayOptions = {}): Promise<FastifyInstance> {
  const port = opts.listen === true ? opts.port ?? await freePort() : 0
  const base = opts.listen === true ? `http://127.0.0.1:${port}` : 'http://gateway.test'
  const app = await buildApp({
    env: { BASE_URL: base, KEYS_FILE: '', LOG_LEVEL: 'silent', ...opts.env },
    configFile: opts.config ?? { proxies: [] },
    ...(opts.logLines === undefined
      ? { logger: false as const }
      : { env: { BASE_URL: base, KEYS_FILE: '', LOG_LEVEL: 'info', ...opts.env }, logStream: { write: (line: string) => { opts.logLines?.push(line) } } })
  })
  t.teardown(async () => await app.close())
  if (opts.listen === true) await app.listen({ host: '127.0.0.1', port })
  else await app.ready()
  return app
}

/** A token as the authorization server would mint it for a route. */
export function mintToken (app: FastifyInstance, pattern: string, claims: { sub?: string, scopes?: string[], ttlSeconds?: number, email?: string } = {}): string {
  const route = app.config.routeByPattern.get(pattern)
  if (route === undefined) throw new Error(`no route ${pattern}`)
  return app.tokens.mint({
    sub: claims.sub ?? 'user-1',
    audience: route.resourceUrl,
    scopes: claims.scopes ?? route.scopes,
    clientId: 'test-client',
    email: claims.email,
    ttlSeconds: claims.ttlSeconds
  }).token
}

/** Polls `url` until it answers 200; returns 200, or why it gave up ('exited with N', 'timed out'). */
export async function pollOk (url: string, child: ChildProcess, ms: number): Promise<number | string> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return `exited with ${child.exitCode}`
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1_000) })).status === 200) return 200
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  return 'timed out'
}

/** SIGTERM, SIGKILL after `graceMs`; resolves with the exit code (null when killed by a signal). */
export async function stopProcess (child: ChildProcess, graceMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  const code = await exited
  clearTimeout(timer)
  return code
}

// The processes as users run them: src/server.ts and the operator commands, through tsx.
const repo = fileURLToPath(new URL('..', import.meta.url))
const tsx = fileURLToPath(import.meta.resolve('tsx'))

export interface Run { code: number | null, stdout: string, stderr: string }

/** Starts one of the repository's scripts with only PATH and `env` in its environment. */
export function node (script: string, args: string[], env: Record<string, string>, cwd: string): ChildProcess {
  return spawn(process.execPath, ['--import', tsx, join(repo, script), ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Its exit code and everything it wrote. */
export async function finish (child: ChildProcess): Promise<Run> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  return { code, stdout, stderr }
}

/** A working directory whose config.yaml holds `proxies`. */
export function workdir (proxies: unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'mcpgw-run-'))
  writeFileSync(join(dir, 'config.yaml'), JSON.stringify({ proxies }))
  return dir
}
