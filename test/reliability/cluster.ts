import { spawn, type ChildProcess } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { parseEnv } from '../../src/config/env.js'
import { loadKeyMaterial } from '../../src/keys/key-ring.js'
import { openStore } from '../../src/store/open-store.js'
import { TokenService } from '../../src/tokens/token-service.js'
import { freePort, pollOk, sleep, stopProcess } from '../helper.js'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const tsx = fileURLToPath(import.meta.resolve('tsx'))

/** A gateway as a real process (src/server.ts), so it can be killed and restarted. */
export class GatewayProcess {
  child: ChildProcess | null = null
  exits: Array<number | null> = []
  output = ''
  constructor (readonly port: number, private readonly env: Record<string, string>, private readonly cwd: string) {}

  get url (): string { return `http://127.0.0.1:${this.port}` }

  async start (): Promise<void> {
    const child = spawn(process.execPath, ['--import', tsx, join(repo, 'src/server.ts')], {
      cwd: this.cwd, env: { PATH: process.env.PATH ?? '', ...this.env, PORT: String(this.port), HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe']
    })
    this.child = child
    child.stdout?.on('data', (d: Buffer) => { this.output += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { this.output += d.toString() })
    child.once('exit', code => { this.exits.push(code) })
    const started = await pollOk(`${this.url}/healthz`, child, 30_000)
    if (started !== 200) throw new Error(`gateway did not start (${started}):\n${this.output}`)
  }

  /** SIGTERM and wait for the graceful exit. */
  async stop (): Promise<number | null> {
    return this.child === null ? null : await stopProcess(this.child)
  }
}

/** Two gateway processes behind one public origin, sharing one Redis. */
export async function startCluster (redisUrl: string, proxies: unknown[]): Promise<{ gateways: GatewayProcess[], base: string, mint: (sub: string) => Promise<string>, stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mcpgw-cluster-'))
  writeFileSync(join(dir, 'config.yaml'), JSON.stringify({ proxies }))
  const ports = [await freePort(), await freePort()]
  // A load balancer would give both one origin; tokens name it, not the replica.
  const base = `http://127.0.0.1:${ports[0]}`
  const env = { BASE_URL: base, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' }
  const gateways = ports.map(p => new GatewayProcess(p, env, dir))
  await gateways[0].start()
  await gateways[1].start()
  const mint = async (sub: string): Promise<string> => {
    const config = parseEnv(env)
    const { store } = await openStore(config, { warn: () => {} })
    try {
      const keys = await loadKeyMaterial(config, store)
      return new TokenService(base, keys.signing, 3600).mintAccess({ sub, audience: `${base}/calc/mcp`, scopes: ['mcp'], clientId: 'load' }).token
    } finally {
      await store.close()
    }
  }
  return { gateways, base, mint, stop: async () => { await Promise.all(gateways.map(async g => await g.stop())) } }
}

export interface LoadFigures { sent: number, ok: number, failed: number, errors: string[] }

/**
 * SDK clients calling `add` in a loop through one gateway until stopped; bounded by `maxCalls`.
 * A failed call is counted and the client reconnects (a new session) before going on.
 */
export function steadyLoad (url: string, token: string, clients: number, maxCalls = 20_000): { figures: LoadFigures, stop: () => Promise<LoadFigures> } {
  const figures: LoadFigures = { sent: 0, ok: 0, failed: 0, errors: [] }
  const state = { running: true }
  const connect = async (): Promise<Client> => {
    const client = new Client({ name: 'load', version: '1' })
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
    return client
  }
  const worker = async (): Promise<void> => {
    let client: Client | null = null
    while (state.running && figures.sent < maxCalls) {
      figures.sent++
      try {
        client ??= await connect()
        const a = figures.sent
        const result = await client.callTool({ name: 'add', arguments: { a, b: 1 } }) as { content: Array<{ text: string }> }
        if (result.content[0].text !== String(a + 1)) throw new Error(`wrong answer ${result.content[0].text}`)
        figures.ok++
      } catch (err) {
        figures.failed++
        if (figures.errors.length < 5) figures.errors.push((err as Error).message)
        await client?.close().catch(() => {})
        client = null
        await sleep(50)
      }
      await sleep(5)
    }
    await client?.close().catch(() => {})
  }
  const workers = Array.from({ length: clients }, worker)
  return {
    figures,
    stop: async () => {
      state.running = false
      await Promise.all(workers)
      return figures
    }
  }
}

/** POSTs `bytes` of body; the gateway answers before the upload ends, so the answer is read while still writing. */
export async function postOversized (url: string, headers: Record<string, string>, bytes: number): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    let answered = false
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'content-length': bytes } }, res => {
      answered = true
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      // 'close', not 'end': the gateway may reset the connection after answering, mid-upload.
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    // EPIPE or ECONNRESET while still uploading: whether an answer came decides.
    req.on('error', () => {})
    req.on('close', () => { if (!answered) reject(new Error('the connection closed without an answer')) })
    req.end(Buffer.alloc(bytes, 'x'))
  })
}
