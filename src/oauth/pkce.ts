/**
 * PKCE (RFC 7636), S256 only: OAuth 2.1 and the MCP authorization spec require it, and `plain`
 * would hand the verifier to anyone who sees the authorization request.
 */
import { createHash } from 'node:crypto'
import { OAuthError } from './errors.js'
import { safeEqual } from './secrets.js'

/** RFC 7636 §4.1: 43-128 characters of the unreserved set. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/
/**
 * BASE64URL(SHA-256(verifier)) is always exactly 43 characters; any other length could never
 * verify, so it is refused at /authorize where the user still sees why, not later at /token.
 */
const S256_CHALLENGE = /^[A-Za-z0-9\-_]{43}$/

/** Checks the PKCE parameters of an authorization request; returns the challenge to bind to the code. */
export function validateCodeChallenge (challenge: unknown, method: unknown): string {
  if (challenge === undefined || challenge === '') {
    throw new OAuthError('invalid_request', 'code_challenge is required (PKCE with S256)')
  }
  if (method === undefined || method === '') {
    // RFC 7636 would default to plain; OAuth 2.1 clients must say S256, and plain is refused.
    throw new OAuthError('invalid_request', 'code_challenge_method is required and must be S256')
  }
  if (method !== 'S256') {
    throw new OAuthError('invalid_request', 'code_challenge_method must be S256')
  }
  if (typeof challenge !== 'string' || !S256_CHALLENGE.test(challenge)) {
    throw new OAuthError('invalid_request', 'code_challenge must be the 43-character base64url SHA-256 of the code_verifier')
  }
  return challenge
}

/** S256 transform of RFC 7636 §4.2. */
export function s256 (verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url')
}

/**
 * Checks the code_verifier sent to /token against the challenge bound to the code.
 * A malformed verifier is a bad request; a well-formed one that does not match is a bad grant.
 */
export function verifyPkce (verifier: unknown, challenge: string): void {
  if (typeof verifier !== 'string' || verifier === '') {
    throw new OAuthError('invalid_request', 'code_verifier is required')
  }
  if (!VERIFIER.test(verifier)) {
    throw new OAuthError('invalid_request', 'code_verifier must be 43-128 characters of [A-Za-z0-9-._~]')
  }
  if (!safeEqual(s256(verifier), challenge)) {
    throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge')
  }
}
