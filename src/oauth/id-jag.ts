/**
 * Identity Assertion JWT Authorization Grants (ID-JAG; MCP enterprise-managed authorization,
 * SEP-990; draft-ietf-oauth-identity-assertion-authz-grant): an enterprise IdP the operator trusts
 * vouches, by RFC 8693 token exchange, that its user may use this client at one of our routes.
 * The client presents it with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523
 * §2.1). The checks are here; key fetching and the single use of `jti` are the caller's.
 */
import { decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose'
import { ASSERTION_ALGORITHMS, assertionFailure, CLOCK_TOLERANCE } from './client-assertion.js'
import { OAuthError } from './errors.js'

export const ID_JAG_TYPE = 'oauth-id-jag+jwt'
/** IdPs issue them for minutes; a longer one is refused rather than trusted for hours. */
export const MAX_ID_JAG_LIFETIME = 600

export interface TrustedIssuer {
  issuer: string
  keys: JWTVerifyGetKey
  /** Claim name → values accepted. */
  claims: Record<string, string[]>
}

export interface IdJagExpectations {
  /** Our issuer (BASE_URL): the assertion's `aud`. */
  audience: string
  /** The authenticated client: the assertion's `client_id`. */
  clientId: string
  trusted: (issuer: string) => TrustedIssuer | undefined
  /** Seconds since the epoch. */
  now: number
}

export interface IdJagClaims {
  iss: string
  sub: string
  /** The resource the IdP approved (the route's URL); resolved by the caller. */
  resource: string
  /** Absent: the IdP did not narrow the scopes. */
  scopes?: string[]
  email?: string
  emailVerified: boolean
  jti: string
  exp: number
}

function refused (why: string): OAuthError {
  return new OAuthError('invalid_grant', `assertion refused: ${why}`)
}

/** RFC 7523 §3: every failure of the grant itself is `invalid_grant`. */
export async function verifyIdJag (assertion: string, expect: IdJagExpectations): Promise<IdJagClaims> {
  let claimedIssuer: unknown
  try {
    claimedIssuer = decodeJwt(assertion).iss
  } catch {
    throw refused('it is not a JWT')
  }
  const idp = typeof claimedIssuer === 'string' ? expect.trusted(claimedIssuer) : undefined
  if (idp === undefined) throw refused('its issuer is not a trusted identity provider')
  let payload
  try {
    ({ payload } = await jwtVerify(assertion, idp.keys, {
      algorithms: ASSERTION_ALGORITHMS,
      typ: ID_JAG_TYPE,
      issuer: idp.issuer,
      audience: expect.audience,
      requiredClaims: ['sub', 'exp', 'jti', 'client_id', 'resource'],
      currentDate: new Date(expect.now * 1000),
      clockTolerance: CLOCK_TOLERANCE
    }))
  } catch (err) {
    throw assertionFailure(err, refused, 'the identity provider\'s keys')
  }
  if (payload.client_id !== expect.clientId) throw refused('it was issued to another client')
  if ((payload.exp as number) - expect.now > MAX_ID_JAG_LIFETIME + CLOCK_TOLERANCE) throw refused(`it must expire within ${MAX_ID_JAG_LIFETIME} seconds`)
  for (const [claim, accepted] of Object.entries(idp.claims)) {
    const value = payload[claim]
    const values = Array.isArray(value) ? value : [value]
    if (!values.some(v => typeof v === 'string' && accepted.includes(v))) throw refused(`the ${claim} claim is not one the gateway accepts`)
  }
  const { sub, resource, jti, scope, email } = payload
  if (typeof sub !== 'string' || typeof resource !== 'string' || typeof jti !== 'string' || jti === '' || jti.length > 256) {
    throw refused('sub, resource and jti must be strings')
  }
  if (scope !== undefined && typeof scope !== 'string') throw refused('scope must be a string')
  if (email !== undefined && typeof email !== 'string') throw refused('email must be a string')
  return {
    iss: idp.issuer,
    sub,
    resource,
    scopes: scope === undefined ? undefined : scope.split(' ').filter(s => s !== ''),
    email,
    // The IdP the operator trusts is authoritative for its users' addresses unless it says otherwise.
    emailVerified: payload.email_verified !== false,
    jti,
    exp: payload.exp as number
  }
}
