import { EventEmitter } from 'node:events'
import type { Store } from './store.js'

interface Entry { value: string, expiresAt: number }

/**
 * The embedded store for a single instance. Bounded: past `maxEntries` the least recently
 * written entry is dropped (Map keeps insertion order), so a flood of registrations cannot
 * exhaust memory.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const
  private readonly entries = new Map<string, Entry>()
  private readonly sets = new Map<string, Map<string, number>>()
  private readonly bus = new EventEmitter()

  constructor (private readonly maxEntries = 100_000, private readonly now = Date.now) {
    this.bus.setMaxListeners(0)
  }

  async get (key: string): Promise<string | null> {
    return this.read(key)
  }

  async set (key: string, value: string, ttlSeconds?: number): Promise<void> {
    this.write(key, value, ttlSeconds)
  }

  async getDel (key: string): Promise<string | null> {
    const value = this.read(key)
    this.entries.delete(key)
    return value
  }

  async del (key: string): Promise<void> {
    this.entries.delete(key)
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

  private read (key: string): string | null {
    const entry = this.entries.get(key)
    if (entry === undefined) return null
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key)
      return null
    }
    return entry.value
  }

  private write (key: string, value: string, ttlSeconds?: number): void {
    this.entries.delete(key)
    this.entries.set(key, { value, expiresAt: ttlSeconds === undefined ? Infinity : this.now() + ttlSeconds * 1000 })
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
  }
}
