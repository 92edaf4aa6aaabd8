/**
 * The store every replica shares: Redis in production, memory when none is configured.
 * Keys are given without the namespace (`<kind>:<id>`); each implementation adds `mcpgw:`.
 * Every method rejects with StoreUnavailableError when the backend cannot be reached.
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
  /** Called after the backend comes back from an outage (to reload what may have been missed). */
  onReconnect (handler: () => void): void
  /** Whether the backend answers right now. */
  ping (): Promise<boolean>
  /** Redis only: its mode and the node(s) it writes to, for /readyz. */
  location?: () => StoreLocation
  close (): Promise<void>
}

export interface StoreLocation { mode: string, node: string }

export const NAMESPACE = 'mcpgw:'
