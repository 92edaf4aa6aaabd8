/**
 * The store cannot serve now. Neutral domain errors (no HTTP or OAuth shape): each surface's
 * mapper answers them 503 with Retry-After (src/http/error-responses.ts), never a crash.
 */
export abstract class StoreError extends Error {
  /** Every surface answers 503: the request may succeed once the store is back or has room. */
  readonly statusCode = 503
  abstract readonly retryAfterSeconds: number
  /** A short machine label for the log and metrics. */
  abstract readonly reason: string
}

/** Redis (or another backing store) cannot be reached. */
export class StoreUnavailableError extends StoreError {
  readonly retryAfterSeconds = 5
  readonly reason = 'store_unavailable'
  constructor (cause?: unknown) {
    super('The gateway store is unavailable; retry shortly.')
    this.name = 'StoreUnavailableError'
    if (cause !== undefined) this.cause = cause
  }
}

/**
 * The store has no room for a new record of this class (the memory store's bound), rather
 * than evicting someone else's record. Short-lived records expire within minutes, which frees room.
 */
export class StoreFullError extends StoreError {
  readonly retryAfterSeconds = 60
  readonly reason: string
  constructor (recordClass: string) {
    super('The gateway is too busy to start this now; retry shortly.')
    this.name = 'StoreFullError'
    this.reason = `store_full_${recordClass}`
  }
}
