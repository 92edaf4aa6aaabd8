/**
 * Key kinds whose loss in a failover would surprise a user: a registered client that vanishes,
 * a code or refresh token that stops working, a consent asked again, a revocation undone.
 * On Sentinel and Cluster their writes wait for replicas (REDIS_WAIT_REPLICAS); the rest
 * (authorization transactions, login states, sessions, locks, rate-limit counters) are cheap to redo.
 */
const DURABLE_KINDS = new Set(['client', 'code', 'code-used', 'family', 'consent', 'revoked', 'keys'])

export const isDurableKey = (key: string): boolean => DURABLE_KINDS.has(key.split(':', 1)[0])
