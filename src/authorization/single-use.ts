/**
 * Single use of a JWT's `jti` (client assertions, ID-JAGs) across every replica: the first use
 * writes the id until the token expires, and a compare-and-swap makes a concurrent second use lose.
 */
import { hashSecret } from '../oauth/secrets.js'
import type { RecordStore } from '../store/records.js'
import { KEY_KINDS } from '../store/storage-schema.js'

/** Kept a little past `exp`: a token the clock tolerance still accepts must still be caught. */
const MARGIN_SECONDS = 60

/** True the first time (issuer, jti) is presented; false on every later use. */
export async function useOnce (records: RecordStore, issuer: string, jti: string, exp: number, now: number): Promise<boolean> {
  const ttl = Math.max(1, exp - now + MARGIN_SECONDS)
  return await records.cas(KEY_KINDS.jti, hashSecret(`${issuer}\n${jti}`), null, '1', ttl)
}
