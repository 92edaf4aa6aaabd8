import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { hostPorts, type Env } from '../config/env.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore, type RedisClient, type RedisMode } from './redis-store.js'
import type { Store } from './store.js'

export interface OpenedStore {
  store: Store
  /** The command connection, when Redis is used (registered with @fastify/redis). */
  redis?: RedisClient
  /** Where it points, for the one start-up log line (no password). */
  description: string
}

interface Logger { warn: (obj: object, msg: string) => void }

// Fail fast while Redis is away: store-backed endpoints answer 503 instead of hanging.
const FAIL_FAST = {
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  lazyConnect: true
} satisfies RedisOptions
const retry = (times: number): number => Math.min(times * 200, 2000)

interface Connector { mode: RedisMode, description: string, connect: (offlineQueue: boolean) => RedisClient }

/** The one Redis mode the environment names (parseEnv has ruled out combinations). */
function connector (env: Env): Connector | undefined {
  const tls = env.REDIS_TLS ? {} : undefined
  if (env.REDIS_SENTINELS !== undefined) {
    const sentinels = hostPorts(env.REDIS_SENTINELS)
    const name = env.REDIS_SENTINEL_MASTER as string
    return {
      mode: 'sentinel',
      description: `redis sentinel ${name} via ${env.REDIS_SENTINELS}${env.REDIS_TLS ? ' (TLS to the data nodes)' : ''}`,
      // failoverDetector: follow +switch-master at once instead of waiting for the old master to drop.
      connect: offlineQueue => new Redis({
        ...FAIL_FAST,
        enableOfflineQueue: offlineQueue,
        retryStrategy: retry,
        sentinels,
        name,
        sentinelPassword: env.REDIS_SENTINEL_PASSWORD,
        password: env.REDIS_PASSWORD,
        tls,
        enableTLSForSentinelMode: tls !== undefined,
        failoverDetector: true
      })
    }
  }
  if (env.REDIS_CLUSTER_NODES !== undefined) {
    const nodes = hostPorts(env.REDIS_CLUSTER_NODES)
    return {
      mode: 'cluster',
      description: `redis cluster via ${env.REDIS_CLUSTER_NODES}${env.REDIS_TLS ? ' (TLS)' : ''}`,
      connect: offlineQueue => new Cluster(nodes, {
        enableOfflineQueue: offlineQueue,
        lazyConnect: true,
        clusterRetryStrategy: retry,
        // After a failover the moved slots are learnt from the next MOVED reply, or within 2 s.
        slotsRefreshInterval: 2000,
        redisOptions: { ...FAIL_FAST, password: env.REDIS_PASSWORD, tls }
      })
    }
  }
  if (env.REDIS_URL !== undefined) {
    const url = new URL(env.REDIS_URL)
    return {
      mode: 'standalone',
      description: `redis ${url.protocol}//${url.host}`,
      connect: offlineQueue => new Redis(env.REDIS_URL as string, { ...FAIL_FAST, enableOfflineQueue: offlineQueue, retryStrategy: retry })
    }
  }
  if (env.REDIS_ADDR !== undefined) {
    const [host, port] = env.REDIS_ADDR.split(':')
    return {
      mode: 'standalone',
      description: `redis ${env.REDIS_TLS ? 'rediss' : 'redis'}://${env.REDIS_ADDR}`,
      connect: offlineQueue => new Redis({ ...FAIL_FAST, enableOfflineQueue: offlineQueue, retryStrategy: retry, host, port: Number(port), password: env.REDIS_PASSWORD, tls })
    }
  }
  return undefined
}

/**
 * Redis (standalone, Sentinel or Cluster) when configured, otherwise the embedded memory store.
 * Start-up waits up to 30 s for Redis, so a gateway deployed beside a Redis that is still
 * starting does not crash-loop.
 */
export async function openStore (env: Env, log: Logger, connectTimeoutMs = 30_000, now: () => number = Date.now): Promise<OpenedStore> {
  const target = connector(env)
  if (target === undefined) {
    return { store: new MemoryStore({ longLived: env.MEMORY_STORE_MAX_LONG_LIVED, shortLived: env.MEMORY_STORE_MAX_SHORT_LIVED }, now), description: 'memory (single instance; set REDIS_URL or REDIS_ADDR to share state)' }
  }
  const client = target.connect(false)
  // The subscriber queues its SUBSCRIBE until connected.
  const subscriber = target.connect(true)
  // A standalone Redis has no replica to wait for.
  const replicas = target.mode === 'standalone' ? 0 : env.REDIS_WAIT_REPLICAS
  const durable = replicas > 0 ? { client: target.connect(false), replicas, timeoutMs: env.REDIS_WAIT_TIMEOUT_MS } : undefined
  const connections = [client, subscriber, ...durable === undefined ? [] : [durable.client]]
  let lastWarn = 0
  const onError = (err: Error): void => {
    // ioredis retries by itself; one line per 10 s is enough to tell the operator.
    if (Date.now() - lastWarn > 10_000) {
      lastWarn = Date.now()
      log.warn({ err: { message: err.message } }, 'redis connection error')
    }
  }
  for (const c of connections) c.on('error', onError)
  try {
    await withTimeout(Promise.all(connections.map(async c => await c.connect())), connectTimeoutMs)
  } catch (err) {
    for (const c of connections) c.disconnect()
    throw new Error(`Redis at ${target.description.slice(6)} is unreachable: ${(err as Error).message}`)
  }
  return { store: new RedisStore({ mode: target.mode, client, subscriber, durable, now }), redis: client, description: target.description }
}

async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
