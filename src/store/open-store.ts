import { Redis, type RedisOptions } from 'ioredis'
import type { Env } from '../config/env.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import type { Store } from './store.js'

export interface OpenedStore {
  store: Store
  /** The command connection, when Redis is used (registered with @fastify/redis). */
  redis?: Redis
  /** Where it points, for the one start-up log line (no password). */
  description: string
}

interface Logger { warn: (obj: object, msg: string) => void }

/**
 * Redis when REDIS_URL or REDIS_ADDR is set, otherwise the embedded memory store. Start-up waits
 * up to 30 s for Redis, so a gateway deployed beside a Redis that is still starting does not
 * crash-loop.
 */
export async function openStore (env: Env, log: Logger, connectTimeoutMs = 30_000): Promise<OpenedStore> {
  if (env.REDIS_URL === undefined && env.REDIS_ADDR === undefined) {
    return { store: new MemoryStore({ longLived: env.MEMORY_STORE_MAX_LONG_LIVED, shortLived: env.MEMORY_STORE_MAX_SHORT_LIVED }), description: 'memory (single instance; set REDIS_URL or REDIS_ADDR to share state)' }
  }
  const options: RedisOptions = {
    // Fail fast while Redis is away: store-backed endpoints answer 503 instead of hanging.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    lazyConnect: true,
    retryStrategy: (times: number) => Math.min(times * 200, 2000)
  }
  let client: Redis
  let description: string
  if (env.REDIS_URL !== undefined) {
    client = new Redis(env.REDIS_URL, options)
    const url = new URL(env.REDIS_URL)
    description = `redis ${url.protocol}//${url.host}`
  } else {
    const [host, port] = (env.REDIS_ADDR as string).split(':')
    client = new Redis({ ...options, host, port: Number(port), password: env.REDIS_PASSWORD, tls: env.REDIS_TLS ? {} : undefined })
    description = `redis ${env.REDIS_TLS ? 'rediss' : 'redis'}://${env.REDIS_ADDR as string}`
  }
  const subscriber = client.duplicate({ enableOfflineQueue: true })
  let lastWarn = 0
  const onError = (err: Error): void => {
    // ioredis retries by itself; one line per 10 s is enough to tell the operator.
    if (Date.now() - lastWarn > 10_000) {
      lastWarn = Date.now()
      log.warn({ err: { message: err.message } }, 'redis connection error')
    }
  }
  client.on('error', onError)
  subscriber.on('error', onError)
  try {
    await withTimeout(Promise.all([client.connect(), subscriber.connect()]), connectTimeoutMs)
  } catch (err) {
    client.disconnect()
    subscriber.disconnect()
    throw new Error(`Redis at ${description.slice(6)} is unreachable: ${(err as Error).message}`)
  }
  return { store: new RedisStore(client, subscriber), redis: client, description }
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
