import { createHash, createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto'
import { ConfigError } from '../config/config-error.js'

/**
 * Keys as the environment gives them, parsed and checked. Kept apart from the key ring (which
 * reads the store) so that config/env.ts can check them at start-up without a cycle.
 */

export interface SigningKey {
  kid: string
  /** PKCS#8 PEM of the P-256 private key. */
  privatePem: string
  publicPem: string
  publicJwk: JsonWebKey
  /** Unix seconds; when a newer key took over, old ones verify until `retireAt`. */
  createdAt: number
  retireAt?: number
}

export function signingKeyFromPem (pem: string, createdAt = 0, retireAt?: number): SigningKey {
  const privateKey = createPrivateKey(pem)
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('is not an EC P-256 private key (ES256)')
  }
  const publicKey = createPublicKey(privateKey)
  const jwk = publicKey.export({ format: 'jwk' })
  // RFC 7638 thumbprint: stable across replicas and restarts for the same key.
  const kid = createHash('sha256')
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url').slice(0, 16)
  return {
    kid,
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicJwk: { ...jwk, kid, alg: 'ES256', use: 'sig' },
    createdAt,
    retireAt
  }
}

/** JWT_SIGNING_KEY may hold several PEM blocks: the first signs, the others still verify. */
export function parseSigningKeys (value: string): SigningKey[] {
  const blocks = value.replace(/\\n/g, '\n').match(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/g)
  if (blocks === null) throw new ConfigError('JWT_SIGNING_KEY', 'holds no PEM private key')
  return blocks.map((pem, i) => {
    try {
      return signingKeyFromPem(pem)
    } catch (err) {
      throw new ConfigError('JWT_SIGNING_KEY', `key ${i + 1} ${(err as Error).message}`)
    }
  })
}

/**
 * ENCRYPTION_KEY: one key, or several separated by commas for rotation (the first encrypts,
 * the others still decrypt what was sealed with them).
 */
export function parseEncryptionKeys (value: string): Buffer[] {
  const parts = value.split(',').map(p => p.trim()).filter(p => p !== '')
  if (parts.length === 0) throw new ConfigError('ENCRYPTION_KEY', 'holds no key')
  return parts.map((part, i) => {
    const key = Buffer.from(part, 'base64')
    const which = parts.length > 1 ? `key ${i + 1} ` : ''
    if (key.length !== 32) throw new ConfigError('ENCRYPTION_KEY', `${which}must be 32 bytes in base64 (got ${key.length} bytes)`)
    return key
  })
}
