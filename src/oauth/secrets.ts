/**
 * Random tokens, secret hashing and constant-time comparison: the one place the OAuth code
 * touches raw secrets, so every comparison of a secret goes through `safeEqual`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** `bytes` of CSPRNG output, base64url without padding (16 bytes → 22 chars). */
export function randomToken (bytes: number): string {
  return randomBytes(bytes).toString('base64url')
}

/**
 * SHA-256, base64url. Enough for the secrets this gateway issues itself (client secrets, codes,
 * refresh tokens): they carry ≥128 bits of CSPRNG entropy, so a slow password hash would add
 * latency without making a brute-force search any less hopeless. Never use it for passwords.
 */
export function hashSecret (secret: string): string {
  return createHash('sha256').update(secret).digest('base64url')
}

/** Whether `secret` hashes to `hash`, compared in constant time. */
export function verifySecret (secret: string, hash: string): boolean {
  return safeEqual(hashSecret(secret), hash)
}

/**
 * Constant-time string equality. Only the length can leak, and every value compared here
 * (hashes, PKCE challenges) has a public, fixed length.
 */
export function safeEqual (a: string, b: string): boolean {
  const bufA = Buffer.from(a)
  const bufB = Buffer.from(b)
  return bufA.length === bufB.length && timingSafeEqual(bufA, bufB)
}
