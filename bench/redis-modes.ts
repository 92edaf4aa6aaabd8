import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { startOidcIdp } from '../test/fixtures/oidc-provider.js'
import { startRedisCluster, startSentinel } from '../test/fixtures/redis-topologies.js'
import { freePort, startRedis } from '../test/helper.js'

/**
 * The refresh-grant figure again on each Redis mode, in one run: standalone, Sentinel (one
 * master, two replicas, three sentinels) with and without WAIT, and Cluster (three masters each
 * with a replica), each behind its own gateway process on core 1, with real redis-server
 * processes on loopback. WAIT's price is one replica acknowledgement per grant-bearing write.
 */

interface Context<R> {
  build: string
  upstreamOrigin: string
  onCore: (core: number, argv: string[]) => string[]
  /** run.ts's refresh-grant measurement, against a gateway's base URL. */
  measureRefresh: (base: string) => Promise<R>
}

const MODES: Array<{ mode: string, topology: 'standalone' | 'sentinel' | 'cluster', env?: Record<string, string> }> = [
  { mode: 'standalone', topology: 'standalone' },
  { mode: 'Sentinel, WAIT 1', topology: 'sentinel' },
  { mode: 'Sentinel, no WAIT', topology: 'sentinel', env: { REDIS_WAIT_REPLICAS: '0' } },
  { mode: 'Cluster, WAIT 1', topology: 'cluster' }
]

export async function measureRedisModes<R> (ctx: Context<R>): Promise<Array<{ mode: string, refresh: R }>> {
  const teardowns: Array<() => unknown> = []
  const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
  const figures: Array<{ mode: string, refresh: R }> = []
  try {
    const redis = (await startRedis(t)).url
    const sentinel = await startSentinel(t)
    const cluster = await startRedisCluster(t)
    const envOf = { standalone: { REDIS_URL: redis }, sentinel: sentinel.env, cluster: cluster.env }
    for (const { mode, topology, env } of MODES) {
      console.log(`refresh grants on Redis ${mode}…`)
      figures.push({ mode, refresh: await withGateway(ctx, { ...envOf[topology], ...env }, ctx.measureRefresh) })
    }
  } finally {
    for (const fn of teardowns.reverse()) await fn()
  }
  return figures
}

/** A gateway process (bench/gateway-process.ts) on `redisEnv`, its own OIDC provider, for `run`. */
async function withGateway<T> (ctx: Context<unknown>, redisEnv: Record<string, string>, run: (base: string) => Promise<T>): Promise<T> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const idp = await startOidcIdp(base)
  const argv = ctx.onCore(1, [process.execPath, join(ctx.build, 'gateway-process.js')])
  const gateway: ChildProcess = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...redisEnv, NODE_ENV: 'production', BENCH_PORT: String(port), BENCH_UPSTREAM: ctx.upstreamOrigin, OAUTH_OIDC_ISSUER: idp.issuer, OAUTH_OIDC_CLIENT_ID: idp.clientId, OAUTH_OIDC_CLIENT_SECRET: idp.clientSecret },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  })
  let err = ''
  gateway.stderr?.on('data', (chunk: Buffer) => { err = (err + chunk.toString()).slice(-4000) })
  try {
    await new Promise((resolve, reject) => {
      gateway.once('message', resolve)
      gateway.once('exit', code => reject(new Error(`gateway on ${JSON.stringify(redisEnv)} exited (${code}) ${err}`)))
    })
    return await run(base)
  } finally {
    gateway.removeAllListeners('exit')
    const exited = new Promise(resolve => gateway.once('exit', resolve))
    gateway.kill('SIGTERM')
    await exited
    await idp.close()
  }
}
