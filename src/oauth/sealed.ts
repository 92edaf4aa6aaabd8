/**
 * AES-256-GCM for secrets the gateway must read back later (upstream tokens, the provider-login
 * state, the token response replayed in the refresh grace window). `context` is bound as
 * associated data, so a value sealed for one purpose cannot be opened as another.
 *
 * Several keys may be configured (ENCRYPTION_KEY=new,old): the first seals, every one opens.
 * A sealed value names its key (`<key id>.<base64url(iv ‖ tag ‖ ciphertext)>`), so rotation
 * costs one decryption; values written before key ids existed (no dot) are tried with each key.
 * A value no configured key opens is reported as undefined, never thrown: its owner signs in again.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

const IV_BYTES = 12
const TAG_BYTES = 16

/** Eight base64url characters of the key's SHA-256: names the key, reveals nothing of it. */
export function encryptionKeyId (key: Buffer): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 8)
}

function open (key: Buffer, body: string, context: string): string | undefined {
  const raw = Buffer.from(body, 'base64url')
  if (raw.length < IV_BYTES + TAG_BYTES) return undefined
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES))
    decipher.setAAD(Buffer.from(context))
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
  } catch {
    // Another key or context, or altered.
    return undefined
  }
}

export class Sealer {
  private readonly byId: Map<string, Buffer>
  private readonly current: { id: string, key: Buffer }

  /** `keys[0]` seals; all open. */
  constructor (private readonly keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error('a Sealer needs at least one key')
    this.byId = new Map(keys.map(k => [encryptionKeyId(k), k]))
    this.current = { id: encryptionKeyId(keys[0]), key: keys[0] }
  }

  seal (plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv)
    cipher.setAAD(Buffer.from(context))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return `${this.current.id}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`
  }

  /** undefined when no configured key opens it for this context, or it was altered. */
  open (sealed: string, context: string): string | undefined {
    const dot = sealed.indexOf('.')
    if (dot === -1) {
      for (const key of this.keys) {
        const plain = open(key, sealed, context)
        if (plain !== undefined) return plain
      }
      return undefined
    }
    const key = this.byId.get(sealed.slice(0, dot))
    return key === undefined ? undefined : open(key, sealed.slice(dot + 1), context)
  }
}
