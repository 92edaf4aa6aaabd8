/**
 * The time every service reads, injected so that tests of expiry and grace windows advance it
 * instead of sleeping. Milliseconds for windows measured in ms (refresh grace, family age),
 * seconds for JWT claims and store TTLs.
 */
export interface Clock {
  /** ms since the epoch. */
  now: () => number
  /** Whole seconds since the epoch (JWT `iat`/`exp`, `client_id_issued_at`). */
  seconds: () => number
}

export const systemClock: Clock = {
  now: () => Date.now(),
  seconds: () => Math.floor(Date.now() / 1000)
}

/** A clock that moves only when told to (tests, and the CLI's fixed instants). */
export function manualClock (startMs = Date.now()): Clock & { advance: (ms: number) => void } {
  let current = startMs
  return {
    now: () => current,
    seconds: () => Math.floor(current / 1000),
    advance: ms => { current += ms }
  }
}
