import { EventEmitter } from 'node:events'
import { StoreFullError } from './store-errors.js'
import { recordClass, type RecordClass } from './storage-schema.js'
import type { Store } from './store.js'

interface Entry { value: string, expiresAt: number, recordClass: RecordClass }

export interface MemoryStoreLimits {
  /** Sessions, refresh families, approvals, clients, keys, upstream tokens. */
  longLived: number
  /** Codes and other records of signed-in users, plus anonymous records (at most half of it). */
  shortLived: number
}

/** Expired entries are swept when a class is full, at most this often (a sweep walks every entry). */
const SWEEP_INTERVAL_MS = 1000

/**
 * The embedded store for a single instance. Bounded per record class (see storage-schema.ts): a
 * new record of a class that is full is refused with StoreFullError (503) once expired entries
 * are swept out; nothing is ever evicted, so a flood of anonymous records cannot push out
 * anyone's session, and when long-lived records reach their bound new logins and registrations
 * get 503 while every existing session and refresh family keeps working. Overwriting an
 * existing key (a refresh rotation, an approval widened) never needs room.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const
  private readonly entries = new Map<string, Entry>()
  private readonly sets = new Map<string, Map<string, number>>()
  private readonly bus = new EventEmitter()
  private readonly counts: Record<RecordClass, number> = { 'long-lived': 0, 'short-lived': 0, anonymous: 0 }
  private readonly bounds: Record<RecordClass, number>
  private lastSweep = -Infinity

  constructor (limits: MemoryStoreLimits, private readonly now = Date.now) {
    this.bus.setMaxListeners(0)
    const anonymous = Math.floor(limits.shortLived / 2)
    this.bounds = { 'long-lived': limits.longLived, 'short-lived': limits.shortLived - anonymous, anonymous }
  }

  async get (key: string): Promise<string | null> {
    return this.read(key)
  }

  async set (key: string, value: string, ttlSeconds?: number): Promise<void> {
    this.write(key, value, ttlSeconds)
  }

  async getDel (key: string): Promise<string | null> {
    const value = this.read(key)
    this.remove(key)
    return value
  }

  async del (key: string): Promise<void> {
    this.remove(key)
    this.sets.delete(key)
  }

  async cas (key: string, expected: string | null, next: string, ttlSeconds?: number): Promise<boolean> {
    if (this.read(key) !== expected) return false
    this.write(key, next, ttlSeconds)
    return true
  }

  async setAdd (key: string, member: string, expiresAtSeconds: number): Promise<void> {
    let set = this.sets.get(key)
    if (set === undefined) {
      set = new Map()
      this.sets.set(key, set)
    }
    set.set(member, expiresAtSeconds * 1000)
  }

  async setMembers (key: string): Promise<string[]> {
    const set = this.sets.get(key)
    if (set === undefined) return []
    const now = this.now()
    const live: string[] = []
    for (const [member, expiresAt] of set) {
      if (expiresAt > now) live.push(member)
      else set.delete(member)
    }
    return live
  }

  async publish (channel: string, message: string): Promise<void> {
    this.bus.emit(channel, message)
  }

  async subscribe (channel: string, handler: (message: string) => void): Promise<void> {
    this.bus.on(channel, handler)
  }

  onReconnect (): void {
    // Memory never disconnects.
  }

  async ping (): Promise<boolean> {
    return true
  }

  async close (): Promise<void> {
    this.bus.removeAllListeners()
  }

  async incr (key: string, ttlSeconds: number): Promise<{ count: number, ttlSeconds: number }> {
    const current = this.read(key)
    const entry = this.entries.get(key)
    if (current === null || entry === undefined) {
      this.write(key, '1', ttlSeconds)
      return { count: 1, ttlSeconds: Math.ceil(ttlSeconds) }
    }
    const count = Number(current) + 1
    entry.value = String(count)
    return { count, ttlSeconds: entry.expiresAt === Infinity ? -1 : Math.max(1, Math.ceil((entry.expiresAt - this.now()) / 1000)) }
  }

  private read (key: string): string | null {
    const entry = this.entries.get(key)
    if (entry === undefined) return null
    if (entry.expiresAt <= this.now()) {
      this.remove(key)
      return null
    }
    return entry.value
  }

  private remove (key: string): void {
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    this.counts[entry.recordClass]--
  }

  private write (key: string, value: string, ttlSeconds?: number): void {
    const expiresAt = ttlSeconds === undefined ? Infinity : this.now() + ttlSeconds * 1000
    const existing = this.entries.get(key)
    if (existing !== undefined) {
      existing.value = value
      existing.expiresAt = expiresAt
      return
    }
    const cls = recordClass(key)
    this.makeRoom(cls)
    this.entries.set(key, { value, expiresAt, recordClass: cls })
    this.counts[cls]++
  }

  private makeRoom (cls: RecordClass): void {
    if (this.counts[cls] < this.bounds[cls]) return
    const now = this.now()
    if (now - this.lastSweep >= SWEEP_INTERVAL_MS) {
      this.lastSweep = now
      for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.remove(key)
    }
    if (this.counts[cls] >= this.bounds[cls]) throw new StoreFullError(cls)
  }
}
