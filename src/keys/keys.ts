import type { Sealer } from '../oauth/sealed.js'
import type { SigningKey } from './key-parsing.js'

/** The gateway's keys as every service sees them (the keys plugin keeps them current). */
export interface Keys {
  /** First signs, all verify; keys past their retireAt are left out (JWKS too). */
  readonly signing: readonly SigningKey[]
  /** The first ENCRYPTION_KEY: the root of the cookie and session-binding keys. */
  readonly encryptionKey: Buffer
  /** Every ENCRYPTION_KEY, the first first: cookies signed with any of them still verify. */
  readonly encryptionKeys: readonly Buffer[]
  /** Seals with the first ENCRYPTION_KEY, opens with any. */
  readonly sealer: Sealer
  /** Runs after a rotation published by any replica has been loaded. */
  onRotate (handler: (signing: SigningKey[]) => void): void
}
