/**
 * The store every replica shares: Redis in production, memory when none is configured.
 * Keys are given without the namespace (`<kind>:<id>`); each implementation adds `mcpgw:`.
 * Every method rejects with StoreUnavailableError when the backend cannot be reached, and a
 * write that needs room the store does not have rejects with StoreFullError (never evicting).
 */
export interface Store {
  readonly kind: 'redis' | 'memory'
  get (key: string): Promise<string | null>
  /** ttlSeconds omitted: no expiry. */
  set (key: string, value: string, ttlSeconds?: number): Promise<void>
  /** Atomically read and remove (single-use codes and states). */
  getDel (key: string): Promise<string | null>
  del (key: string): Promise<void>
  /**
   * Atomically replace the value when it equals `expected` (null: only when absent).
   * Returns whether the swap happened.
   */
  cas (key: string, expected: string | null, next: string, ttlSeconds?: number): Promise<boolean>
  /** A set whose members expire one by one (revoked token ids, ...). */
  setAdd (key: string, member: string, expiresAtSeconds: number): Promise<void>
  /** Live members of such a set. */
  setMembers (key: string): Promise<string[]>
  /** Broadcast to every replica (itself included). */
  publish (channel: string, message: string): Promise<void>
  /** Handler runs for every message on the channel, from any replica. */
  subscribe (channel: string, handler: (message: string) => void): Promise<void>
  /** Called after the backend, or only the pub/sub subscription, comes back from an outage (to reload what may have been missed). */
  onReconnect (handler: () => void): void
  /** Whether the backend answers right now. */
  ping (): Promise<boolean>
  /** Redis only: its mode and the node(s) it writes to, for /readyz. */
  location?: () => StoreLocation
  close (): Promise<void>
  /**
   * Atomically adds one to a counter; the first increment starts its window of `ttlSeconds`
   * (later ones never extend it). Returns the new count and the seconds left in the window.
   */
  incr (key: string, ttlSeconds: number): Promise<{ count: number, ttlSeconds: number }>
}

export interface StoreLocation { mode: string, node: string }

export const NAMESPACE = 'mcpgw:'
