/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9): the
 * client signs a short JWT with a key whose public half it registered. The checks are here; where
 * the keys come from and the single use of `jti` across replicas are the caller's.
 */
import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose'
import { OAuthError } from './errors.js'

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** Asymmetric only: a shared-secret `HS256` assertion would make the registered "public key" a secret. */
export const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA']
/** An assertion may not live longer than this: a stolen one is worth little, and its jti is kept that long. */
export const MAX_ASSERTION_LIFETIME = 300
/** Clocks of the signer and the gateway differ a little. */
export const CLOCK_TOLERANCE = 30

export interface AssertionExpectations {
  clientId: string
  /** RFC 7523 §3 item 3: the issuer or the token endpoint URL. */
  audiences: string[]
  keys: JWTVerifyGetKey
  /** Seconds since the epoch. */
  now: number
}

/** What a verified assertion leaves to check: its `jti` is unused until `exp`. */
export interface VerifiedAssertion { jti: string, exp: number }

function refused (why: string): OAuthError {
  // One wording on the wire, like every client authentication failure; the reason is logged.
  return new OAuthError('invalid_client', `client assertion refused: ${why}`, { publicDescription: 'client authentication failed' })
}

/**
 * What a failed `jwtVerify` of a signed assertion (client assertion or ID-JAG) means: a refusal
 * naming the check that failed or, when the signer's keys could not be fetched, a 503, since
 * nothing the caller sent is wrong.
 */
export function assertionFailure (err: unknown, refused: (why: string) => OAuthError, keys: string): OAuthError {
  if (err instanceof errors.JWTExpired) return refused('it has expired')
  if (err instanceof errors.JWTClaimValidationFailed) return refused(`the ${err.claim} claim is wrong`)
  if (err instanceof errors.JOSEError) return refused(`its signature does not verify with ${keys}`)
  return new OAuthError('temporarily_unavailable', `${keys} could not be fetched; retry`, { status: 503, headers: { 'retry-after': '5' } })
}

export async function verifyClientAssertion (assertion: string, expect: AssertionExpectations): Promise<VerifiedAssertion> {
  let payload
  try {
    ({ payload } = await jwtVerify(assertion, expect.keys, {
      algorithms: ASSERTION_ALGORITHMS,
      // RFC 7523 §3 items 1-2: iss and sub are both the client id.
      issuer: expect.clientId,
      subject: expect.clientId,
      audience: expect.audiences,
      requiredClaims: ['exp', 'jti'],
      currentDate: new Date(expect.now * 1000),
      clockTolerance: CLOCK_TOLERANCE
    }))
  } catch (err) {
    throw assertionFailure(err, refused, 'the client\'s registered keys')
  }
  const exp = payload.exp as number
  if (exp - expect.now > MAX_ASSERTION_LIFETIME + CLOCK_TOLERANCE) {
    throw refused(`it must expire within ${MAX_ASSERTION_LIFETIME} seconds`)
  }
  if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256) throw refused('jti must be a short string')
  return { jti: payload.jti, exp }
}
