import { randomBytes } from 'node:crypto'
import { createSigner, createVerifier, TokenError } from 'fast-jwt'
import { systemClock, type Clock } from '../authorization/clock.js'
import { isRetired, liveKeys, type SigningKey } from '../keys/key-ring.js'

/** The claims of an access token minted by the gateway (RFC 9068 profile). */
export interface AccessClaims {
  iss: string
  sub: string
  aud: string
  exp: number
  iat: number
  jti: string
  /** Space-delimited scopes granted. */
  scope: string
  client_id: string
  email?: string
}

export type RejectReason =
  | 'malformed' | 'unknown_key' | 'retired_key' | 'bad_signature' | 'expired' | 'wrong_audience'
  | 'wrong_issuer' | 'bad_algorithm' | 'missing_claims' | 'revoked' | 'wrong_type'

/** Why a bearer token was refused: a metrics label and a safe description for the client. */
export class TokenRejected extends Error {
  constructor (readonly reason: RejectReason, message: string) {
    super(message)
    this.name = 'TokenRejected'
  }
}

export interface MintOptions {
  sub: string
  audience: string
  scopes: string[]
  clientId: string
  email?: string
  ttlSeconds?: number
}

type Verify = (token: string) => AccessClaims
type Sign = (payload: Record<string, unknown>) => string

const MAX_HEADER_CACHE = 64
/** Tokens remembered as accepted; the oldest goes first (each is about 1 kB with its claims). */
const MAX_ACCEPTED = 10_000
const IDENTITY_TTL = 300
const MAX_IDENTITY_CACHE = 10_000

/**
 * Signs and verifies the gateway's ES256 tokens. Verification is local (fast-jwt) and a token
 * once accepted is remembered until it expires, so the proxied path does no network I/O and no
 * signature check per request; revocation is an in-memory deny set fed by the tokens plugin
 * from pub/sub.
 */
export class TokenService {
  private keys: SigningKey[] = []
  private signer!: Sign
  private identitySigner!: Sign
  /** audience → kid → verifier */
  private verifiers = new Map<string, Map<string, Verify>>()
  /** Base64url header segment → the key it names (null: none of ours), so the hot path never parses JSON for a known header. */
  private headerKeys = new Map<string, SigningKey | null>()
  private readonly revoked = new Map<string, number>()
  private readonly identityCache = new Map<string, { token: string, exp: number }>()
  /**
   * Token text → the audience it was accepted for and its claims. Keyed by the text itself, not
   * by a hash of it (what fast-jwt's own cache does, a SHA-256 of every bearer per request): this
   * heap already holds the signing keys, which are worth more than any token they signed.
   */
  private readonly accepted = new Map<string, { audience: string, claims: AccessClaims }>()

  /** `clock` dates what is minted; verification reads the system time (fast-jwt's). */
  constructor (private readonly issuer: string, keys: SigningKey[], private readonly accessTtl: number, private readonly clock: Clock = systemClock) {
    this.setKeys(keys)
  }

  setKeys (keys: SigningKey[]): void {
    this.keys = liveKeys(keys)
    const current = this.keys[0]
    this.signer = createSigner({ algorithm: 'ES256', key: current.privatePem, kid: current.kid, iss: this.issuer, header: { alg: 'ES256', typ: 'at+jwt' } }) as Sign
    this.identitySigner = createSigner({ algorithm: 'ES256', key: current.privatePem, kid: current.kid, iss: this.issuer }) as Sign
    this.verifiers = new Map()
    this.headerKeys = new Map()
    this.identityCache.clear()
    this.accepted.clear()
  }

  mintAccess (opts: MintOptions): { token: string, jti: string, expiresAt: number } {
    const iat = this.clock.seconds()
    const ttl = opts.ttlSeconds ?? this.accessTtl
    const jti = randomBytes(16).toString('base64url')
    const payload: Omit<AccessClaims, 'iss'> = {
      sub: opts.sub, aud: opts.audience, iat, exp: iat + ttl, jti, scope: opts.scopes.join(' '), client_id: opts.clientId
    }
    if (opts.email !== undefined) payload.email = opts.email
    return { token: this.signer(payload), jti, expiresAt: iat + ttl }
  }

  /** Verifies a token for one audience (a route's resource URL); throws TokenRejected. */
  verify (token: string, audience: string): AccessClaims {
    const dot = token.indexOf('.')
    if (dot <= 0) throw new TokenRejected('malformed', 'The access token is not a JWT issued by this gateway')
    const key = this.keyOf(token.slice(0, dot))
    if (key === undefined) throw new TokenRejected('unknown_key', 'The access token was not signed by this gateway')
    // Before the accepted tokens, which would keep passing a token whose key has retired since;
    // keys without a retireAt (the usual case) pay no clock read.
    if (key.retireAt !== undefined && isRetired(key)) throw new TokenRejected('retired_key', 'The access token was signed by a retired key')
    const seen = this.accepted.get(token)
    let claims: AccessClaims
    // fast-jwt's rule: valid while now < exp, read from the system time.
    if (seen !== undefined && seen.audience === audience && seen.claims.exp * 1000 > Date.now()) {
      claims = seen.claims
    } else {
      try {
        claims = this.verifierFor(audience, key)(token)
      } catch (err) {
        throw rejection(err)
      }
      this.remember(token, audience, claims)
    }
    if (this.revoked.has(claims.jti)) throw new TokenRejected('revoked', 'The access token has been revoked')
    return claims
  }

  /** A short-lived token that tells an upstream who the caller is (upstream_auth: identity). */
  identityToken (claims: AccessClaims, audience: string): string {
    const key = `${claims.sub}\n${claims.client_id}\n${audience}`
    const now = this.clock.seconds()
    const cached = this.identityCache.get(key)
    if (cached !== undefined && cached.exp - 60 > now) return cached.token
    const payload: Record<string, unknown> = { sub: claims.sub, aud: audience, iat: now, exp: now + IDENTITY_TTL, client_id: claims.client_id }
    if (claims.email !== undefined) payload.email = claims.email
    const token = this.identitySigner(payload)
    if (this.identityCache.size >= MAX_IDENTITY_CACHE) this.identityCache.clear()
    this.identityCache.set(key, { token, exp: now + IDENTITY_TTL })
    return token
  }

  markRevoked (jti: string, expiresAt: number): void {
    this.revoked.set(jti, expiresAt)
  }

  /** The deny set as [jti, exp] pairs. */
  revokedEntries (): IterableIterator<[string, number]> {
    return this.revoked.entries()
  }

  /** Drops deny-set entries whose tokens have expired anyway. */
  pruneRevoked (now = this.clock.seconds()): void {
    for (const [jti, exp] of this.revoked) if (exp <= now) this.revoked.delete(jti)
  }

  private remember (token: string, audience: string, claims: AccessClaims): void {
    if (this.accepted.size >= MAX_ACCEPTED) this.accepted.delete(this.accepted.keys().next().value as string)
    this.accepted.set(token, { audience, claims })
  }

  private keyOf (segment: string): SigningKey | undefined {
    const known = this.headerKeys.get(segment)
    if (known !== undefined) return known ?? undefined
    let key: SigningKey | null = null
    try {
      const header = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as { kid?: unknown }
      if (typeof header.kid === 'string') key = this.keys.find(k => k.kid === header.kid) ?? null
    } catch {
      // Not JSON: not ours.
    }
    // Bounded: crafted headers cannot grow the map without limit.
    if (this.headerKeys.size < MAX_HEADER_CACHE) this.headerKeys.set(segment, key)
    return key ?? undefined
  }

  private verifierFor (audience: string, key: SigningKey): Verify {
    let byKid = this.verifiers.get(audience)
    if (byKid === undefined) {
      byKid = new Map()
      this.verifiers.set(audience, byKid)
    }
    let verify = byKid.get(key.kid)
    if (verify === undefined) {
      verify = createVerifier({
        key: key.publicPem,
        algorithms: ['ES256'],
        allowedIss: this.issuer,
        allowedAud: audience,
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
        checkTyp: 'at+jwt'
      }) as Verify
      byKid.set(key.kid, verify)
    }
    return verify
  }
}

function rejection (err: unknown): TokenRejected {
  const code = err instanceof TokenError ? err.code : ''
  const message = err instanceof Error ? err.message : ''
  switch (code) {
    case TokenError.codes.expired:
      return new TokenRejected('expired', 'The access token has expired')
    case TokenError.codes.invalidSignature:
      return new TokenRejected('bad_signature', 'The access token signature is invalid')
    case TokenError.codes.invalidAlgorithm:
      return new TokenRejected('bad_algorithm', 'The access token uses an algorithm this gateway does not accept')
    case TokenError.codes.missingRequiredClaim:
      return new TokenRejected('missing_claims', 'The access token lacks required claims')
    case TokenError.codes.invalidType:
      return new TokenRejected('wrong_type', 'The token is not an access token')
    case TokenError.codes.invalidClaimValue:
      if (message.includes('aud')) return new TokenRejected('wrong_audience', 'The access token was issued for another resource')
      if (message.includes('iss')) return new TokenRejected('wrong_issuer', 'The access token was issued by another server')
      return new TokenRejected('malformed', 'The access token has an invalid claim')
    default:
      return new TokenRejected('malformed', 'The access token is malformed')
  }
}
