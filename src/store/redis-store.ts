import type { ChainableCommander, Cluster, Redis } from 'ioredis'
import { StoreUnavailableError } from './store-errors.js'
import { isDurableKey } from './storage-schema.js'
import { NAMESPACE, type Store, type StoreLocation } from './store.js'

export type RedisClient = Redis | Cluster
export type RedisMode = 'standalone' | 'sentinel' | 'cluster'

export interface RedisConnections {
  mode: RedisMode
  client: RedisClient
  subscriber: RedisClient
  /** Sentinel and Cluster: a connection of its own (WAIT blocks it) for replica-acknowledged writes. */
  durable?: Durability
  /** ms since the epoch: what expires the members of sets (the gateway's clock). */
  now?: () => number
}

export interface Durability { client: RedisClient, replicas: number, timeoutMs: number }

// Compare-and-swap in one round trip. ARGV: 1 = '1' when the key must be absent, 2 = expected
// value, 3 = new value, 4 = TTL in seconds (0: none).
const CAS_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1`

/**
 * Redis-backed store, the same in every mode: each operation touches one key, so it runs on a
 * Cluster as it does on one node. Commands fail fast while Redis is away (the client is created
 * with enableOfflineQueue: false), and every failure becomes StoreUnavailableError (503).
 * Pub/sub is Redis's classic broadcast: a Cluster relays it to every node, and ioredis
 * re-subscribes after a reconnect, a failover or a resharding.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const
  private readonly handlers = new Map<string, Array<(message: string) => void>>()
  private readonly reconnectHandlers: Array<() => void> = []
  /** Connections that dropped and are not back yet. */
  private readonly down = new Set<RedisClient>()

  readonly mode: RedisMode
  private readonly client: RedisClient
  private readonly subscriber: RedisClient
  private readonly durable: Durability | undefined

  private readonly now: () => number

  constructor ({ mode, client, subscriber, durable, now = Date.now }: RedisConnections) {
    this.now = now
    this.mode = mode
    this.client = client
    this.subscriber = subscriber
    this.durable = durable
    subscriber.on('message', (channel: string, message: string) => {
      for (const handler of this.handlers.get(channel) ?? []) handler(message)
    })
    this.whenBack(client, async () => {})
    // The subscription can drop alone, losing what is published meanwhile; the PING is answered
    // after ioredis's automatic re-SUBSCRIBE, so nothing published from then on is missed.
    this.whenBack(subscriber, async () => await subscriber.ping())
  }

  /** The reconnect handlers run once every dropped connection is back (once per outage). */
  private whenBack (connection: RedisClient, settle: () => Promise<unknown>): void {
    connection.on('close', () => { this.down.add(connection) })
    connection.on('ready', () => {
      if (!this.down.has(connection)) return
      settle().then(() => {
        this.down.delete(connection)
        if (this.down.size === 0) for (const handler of this.reconnectHandlers) handler()
      }, () => {
        // Dropped again before settling: it stays down, and its next 'ready' tries again.
      })
    })
  }

  async get (key: string): Promise<string | null> {
    return await this.run(async () => await this.client.get(NAMESPACE + key))
  }

  async set (key: string, value: string, ttlSeconds?: number): Promise<void> {
    await this.write(key, p => ttlSeconds === undefined
      ? p.set(NAMESPACE + key, value)
      : p.set(NAMESPACE + key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds))))
  }

  async getDel (key: string): Promise<string | null> {
    return await this.run(async () => await this.client.getdel(NAMESPACE + key))
  }

  async del (key: string): Promise<void> {
    await this.run(async () => await this.client.del(NAMESPACE + key))
  }

  async cas (key: string, expected: string | null, next: string, ttlSeconds?: number): Promise<boolean> {
    const ttl = ttlSeconds === undefined ? 0 : Math.max(1, Math.ceil(ttlSeconds))
    const result = await this.write(key, p => p.eval(
      CAS_SCRIPT, 1, NAMESPACE + key, expected === null ? '1' : '0', expected ?? '', next, String(ttl)))
    return result === 1
  }

  async setAdd (key: string, member: string, expiresAtSeconds: number): Promise<void> {
    const k = NAMESPACE + key
    await this.write(key, p => p
      .zadd(k, expiresAtSeconds, member)
      .zremrangebyscore(k, '-inf', Math.floor(this.now() / 1000)))
  }

  async setMembers (key: string): Promise<string[]> {
    return await this.run(async () =>
      await this.client.zrangebyscore(NAMESPACE + key, Math.floor(this.now() / 1000) + 1, '+inf'))
  }

  async publish (channel: string, message: string): Promise<void> {
    await this.run(async () => await this.client.publish(NAMESPACE + channel, message))
  }

  async subscribe (channel: string, handler: (message: string) => void): Promise<void> {
    const full = NAMESPACE + channel
    const list = this.handlers.get(full)
    if (list !== undefined) {
      list.push(handler)
      return
    }
    this.handlers.set(full, [handler])
    // ioredis re-subscribes by itself after a reconnect (autoResubscribe).
    await this.run(async () => await this.subscriber.subscribe(full))
  }

  onReconnect (handler: () => void): void {
    this.reconnectHandlers.push(handler)
  }

  async ping (): Promise<boolean> {
    try {
      return (await this.client.ping()) === 'PONG'
    } catch {
      return false
    }
  }

  location (): StoreLocation {
    if (this.mode === 'cluster') {
      const masters = (this.client as Cluster).nodes('master').map(n => `${n.options.host ?? ''}:${n.options.port ?? ''}`)
      return { mode: this.mode, node: masters.sort().join(',') }
    }
    // In Sentinel mode this is the master the sentinels named last.
    const stream = (this.client as Redis).stream as { remoteAddress?: string, remotePort?: number } | undefined
    return { mode: this.mode, node: stream?.remoteAddress === undefined ? '' : `${stream.remoteAddress}:${stream.remotePort ?? ''}` }
  }

  async close (): Promise<void> {
    // QUIT waits for Redis to answer; while it is away, drop the connections instead of hanging
    // the shutdown (the subscriber would queue QUIT until a reconnect that never comes).
    const end = async (c: RedisClient): Promise<void> => {
      if (c.status === 'ready') await c.quit().catch(() => {})
      // Also after QUIT: in Sentinel mode it leaves the failover detector's sentinel connections open.
      c.disconnect()
    }
    await Promise.all([this.client, this.subscriber, ...this.durable === undefined ? [] : [this.durable.client]].map(end))
  }

  /**
   * One write as a pipeline (one round trip). A durable one runs on its own connection followed
   * by WAIT, which a Cluster sends to the node of the key: replication is asynchronous, and an
   * answer given before a replica has the write could be undone by a failover.
   */
  private async write (key: string, add: (p: ChainableCommander) => ChainableCommander): Promise<unknown> {
    const durable = this.durable !== undefined && isDurableKey(key) ? this.durable : undefined
    return await this.run(async () => {
      const pipeline = add((durable?.client ?? this.client).pipeline())
      if (durable !== undefined) pipeline.wait(durable.replicas, durable.timeoutMs)
      const results = await pipeline.exec() ?? []
      for (const [err] of results) if (err !== null) throw err
      const acked = Number(results[results.length - 1]?.[1])
      if (durable !== undefined && !(acked >= durable.replicas)) {
        throw new Error(`${acked} of ${durable.replicas} replicas acknowledged within ${durable.timeoutMs} ms`)
      }
      return results[0]?.[1]
    })
  }

  private async run<T> (command: () => Promise<T>): Promise<T> {
    try {
      return await command()
    } catch (err) {
      throw new StoreUnavailableError(err)
    }
  }

  async incr (key: string, ttlSeconds: number): Promise<{ count: number, ttlSeconds: number }> {
    // One key, one round trip: the window starts at the first increment and is never extended.
    const script = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('TTL', KEYS[1])}`
    const [count, ttl] = await this.run(async () => await this.client.eval(
      script, 1, NAMESPACE + key, String(Math.max(1, Math.ceil(ttlSeconds))))) as [number, number]
    return { count, ttlSeconds: ttl }
  }
}
