/**
 * The storage schema: every kind of key the gateway writes (`mcpgw:<kind>:<id>`, or the bare
 * kind for a set), how long it lives, what its value is, and how the stores treat it. A new kind
 * is added here once; docs/storage.md explains the same for an operator looking at Redis.
 *
 * Values are read through `RecordStore` (records.ts), which checks each one against its schema:
 * a corrupt or foreign value (another version, a hand edit, a changed ENCRYPTION_KEY) is treated
 * as absent and logged, never a 500.
 *
 * `class`, for the memory store's bounds (it bounds each class on its own and never drops one
 * kind to make room for another):
 * - `long-lived`: what users hold for days (sessions, refresh families, approvals, clients, keys,
 *   upstream tokens). Losing one logs a user out.
 * - `short-lived`: minutes-long records written only for a signed-in user (codes, code-use
 *   records, refresh locks).
 * - `anonymous`: minutes-long records any unauthenticated request can make the gateway write
 *   (consent transactions, provider-login states, per-address counters). Bounded apart, so a flood
 *   of them cannot stop signed-in users from getting codes either.
 * A kind not listed counts as anonymous: a new kind then competes with the flood instead of
 * pushing out sessions.
 *
 * `durable`, for Redis Sentinel and Cluster: kinds whose loss in a failover would surprise a user
 * (a registered client that vanishes, a code or refresh token that stops working, a consent asked
 * again, a revocation undone); their writes wait for replicas (REDIS_WAIT_REPLICAS). The rest
 * (authorization transactions, login states, sessions, locks, rate-limit counters) are cheap to redo.
 */
import { Type, type Static, type TSchema } from 'typebox'

export type RecordClass = 'long-lived' | 'short-lived' | 'anonymous'

/**
 * How a value is written: JSON; JSON sealed with ENCRYPTION_KEY (AES-256-GCM, `sealContext` as
 * associated data, so a value of one kind cannot be opened as another); or plain text.
 */
export type Encoding = 'json' | 'sealed-json' | 'text'

export interface KeyKind<S extends TSchema = TSchema> {
  readonly name: string
  readonly class: RecordClass
  readonly durable: boolean
  readonly encoding: Encoding
  readonly schema: S
  /** Seconds, when fixed; otherwise the setting that decides it. */
  readonly ttl: number | string
  /** sealed-json only: the associated data (the names sealed values have always used). */
  readonly sealContext: string
}

interface KindSpec<S extends TSchema> { class: RecordClass, durable?: true, encoding?: Encoding, sealContext?: string, schema: S, ttl: number | string }

function kind<S extends TSchema> (name: string, spec: KindSpec<S>): KeyKind<S> {
  return {
    name,
    class: spec.class,
    durable: spec.durable === true,
    encoding: spec.encoding ?? 'json',
    schema: spec.schema,
    ttl: spec.ttl,
    sealContext: spec.sealContext ?? name
  }
}

const MINUTE = 60
const DAY = 24 * 60 * 60

const CODE_TTL_SECONDS = 5 * MINUTE
/** Longer than a code lives, so every replay of a live code is caught. */
const CODE_USE_TTL_SECONDS = 60 * MINUTE
const TRANSACTION_TTL_SECONDS = 10 * MINUTE
export const LOGIN_TTL_SECONDS = 10 * MINUTE
/** Registered clients (and approvals) unused this long are forgotten; each use starts the period again. */
export const CLIENT_TTL_SECONDS = 90 * DAY

/** Who logged in at the identity provider (as the allow-lists see them). */
export const IdentitySchema = Type.Object({
  sub: Type.String(),
  email: Type.Optional(Type.String()),
  emailVerified: Type.Boolean(),
  hostedDomain: Type.Optional(Type.String())
})

/** A validated authorization request waiting for consent or for the upstream login. */
export const PendingAuthorizationSchema = Type.Object({
  clientId: Type.String(),
  clientName: Type.Optional(Type.String()),
  redirectUri: Type.String(),
  codeChallenge: Type.String(),
  /** The route's pattern. */
  resource: Type.String(),
  scopes: Type.Array(Type.String()),
  state: Type.Optional(Type.String())
})
export type PendingAuthorization = Static<typeof PendingAuthorizationSchema>

/** The consent page's transaction: bound to the browser that opened it and to its CSRF token (both hashed). */
export const TransactionSchema = Type.Object({ pending: PendingAuthorizationSchema, browser: Type.String(), csrf: Type.String() })

/** The upstream login's secrets, sealed; `browser` is the hash of the login cookie set in the browser that approved. */
export const UpstreamLoginStateSchema = Type.Object({
  pending: PendingAuthorizationSchema,
  nonce: Type.String(),
  codeVerifier: Type.String(),
  browser: Type.String()
})
export type UpstreamLoginState = Static<typeof UpstreamLoginStateSchema>

/** What an authorization code stands for; bound to all of it at /token. Codes of older versions lack emailVerified. */
export const CodeGrantSchema = Type.Object({
  clientId: Type.String(),
  redirectUri: Type.String(),
  codeChallenge: Type.String(),
  /** The route's pattern. */
  resource: Type.String(),
  scopes: Type.Array(Type.String()),
  sub: Type.String(),
  email: Type.String(),
  emailVerified: Type.Optional(Type.Boolean()),
  hostedDomain: Type.Optional(Type.String())
})
export type CodeGrant = Static<typeof CodeGrantSchema>

/** What a redeemed code issued, kept so a replay of the code can revoke it. */
export const CodeUseSchema = Type.Object({ familyId: Type.Optional(Type.String()), jti: Type.String(), exp: Type.Number() })
export type CodeUse = Static<typeof CodeUseSchema>

/**
 * A refresh family: the rotation state (src/oauth/refresh-rotation.ts) plus the grant it
 * carries. Families written before identities were kept lack `emailVerified` and `hostedDomain`
 * (and `createdAt`, which already sends them to a new login).
 */
export const FamilyRecordSchema = Type.Object({
  familyId: Type.String(),
  currentHash: Type.String(),
  previous: Type.Optional(Type.Object({ hash: Type.String(), rotatedAt: Type.Number(), result: Type.String() })),
  revoked: Type.Optional(Type.Boolean()),
  createdAt: Type.Optional(Type.Number()),
  clientId: Type.String(),
  sub: Type.String(),
  email: Type.String(),
  emailVerified: Type.Optional(Type.Boolean()),
  hostedDomain: Type.Optional(Type.String()),
  /** The route's pattern. */
  resource: Type.String(),
  /** Granted at the code; refreshes may narrow the access token, never this. */
  scopes: Type.Array(Type.String()),
  /** Access tokens of the family still alive, revoked with it: [jti, exp]. */
  accessTokens: Type.Array(Type.Tuple([Type.String(), Type.Number()]))
})
export type FamilyRecord = Static<typeof FamilyRecordSchema>

/** A registered (DCR) client; unknown fields are kept (newer versions may add some). */
export const ClientRecordSchema = Type.Object({
  client_id: Type.String(),
  redirect_uris: Type.Array(Type.String()),
  grant_types: Type.Array(Type.String()),
  token_endpoint_auth_method: Type.String(),
  client_name: Type.Optional(Type.String()),
  client_secret_hash: Type.Optional(Type.String()),
  client_id_issued_at: Type.Optional(Type.Number())
}, { additionalProperties: true })

/** The user's tokens at the identity provider (sealed). */
export const UpstreamTokensSchema = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.Optional(Type.String()),
  id_token: Type.Optional(Type.String()),
  /** Seconds since the epoch. */
  expires_at: Type.Optional(Type.Number()),
  /** Seconds since the epoch: when the gateway obtained them (absent in older records). */
  obtained_at: Type.Optional(Type.Number()),
  scope: Type.Optional(Type.String())
})

/** Generated keys, shared by the replicas when JWT_SIGNING_KEY / ENCRYPTION_KEY are not set. */
export const StoredKeysSchema = Type.Object({
  signing: Type.Array(Type.Object({ pem: Type.String(), createdAt: Type.Number(), retireAt: Type.Optional(Type.Number()) })),
  encryptionKey: Type.String()
})
export type StoredKeys = Static<typeof StoredKeysSchema>

const Text = Type.String()

/** Every kind, by the name that prefixes its keys. */
export const KEY_KINDS = {
  /** `session:<sha256(cookie)>`: the browser's gateway login. */
  session: kind('session', { class: 'long-lived', schema: IdentitySchema, ttl: 'LOGIN_SESSION_TTL' }),
  /** `family:<family id>`: one refresh-token family (the id is the refresh token's first part). */
  family: kind('family', { class: 'long-lived', durable: true, schema: FamilyRecordSchema, ttl: 'REFRESH_TOKEN_TTL, cut at REFRESH_TOKEN_MAX_LIFETIME' }),
  /** `consent:<sha256(sub, client, route)>`: the scopes a user approved for a client on a route. */
  consent: kind('consent', { class: 'long-lived', durable: true, schema: Type.Array(Type.String()), ttl: CLIENT_TTL_SECONDS }),
  /** `client:<client id>`: a dynamically registered client; each use restarts its TTL. */
  client: kind('client', { class: 'long-lived', durable: true, schema: ClientRecordSchema, ttl: CLIENT_TTL_SECONDS }),
  /** `keys:material`: generated signing and encryption keys. */
  keys: kind('keys', { class: 'long-lived', durable: true, schema: StoredKeysSchema, ttl: 'none' }),
  /** `upstream:<sub>`: the user's identity-provider tokens, sealed. */
  upstream: kind('upstream', { class: 'long-lived', encoding: 'sealed-json', sealContext: 'upstream-tokens', schema: UpstreamTokensSchema, ttl: 'REFRESH_TOKEN_TTL' }),
  /** `revoked`: a sorted set of "<jti> <exp>" for revoked access tokens (scored by exp). */
  revoked: kind('revoked', { class: 'long-lived', durable: true, encoding: 'text', schema: Text, ttl: 'each member until its exp' }),
  /** `code:<sha256(code)>`: an authorization code. */
  code: kind('code', { class: 'short-lived', durable: true, schema: CodeGrantSchema, ttl: CODE_TTL_SECONDS }),
  /** `code-used:<sha256(code)>`: what a redeemed code issued, to revoke it on a replay. */
  'code-used': kind('code-used', { class: 'short-lived', durable: true, schema: CodeUseSchema, ttl: CODE_USE_TTL_SECONDS }),
  /**
   * `jti:<sha256(issuer, jti)>`: a client assertion or ID-JAG already used, until it expires
   * (written only after its signature verified; a failover that lost it would allow a replay).
   */
  jti: kind('jti', { class: 'short-lived', durable: true, encoding: 'text', schema: Text, ttl: 'the assertion\'s exp + 60 s' }),
  /** `upstream-refresh:<sub>`: the lock one replica holds while refreshing a provider token (its instance id). */
  'upstream-refresh': kind('upstream-refresh', { class: 'short-lived', encoding: 'text', schema: Text, ttl: 15 }),
  /** `authz:<transaction id>`: a consent page's transaction. */
  authz: kind('authz', { class: 'anonymous', schema: TransactionSchema, ttl: TRANSACTION_TTL_SECONDS }),
  /** `login:<sha256(state)>`: an upstream login's state, nonce and PKCE verifier, sealed. */
  login: kind('login', { class: 'anonymous', encoding: 'sealed-json', sealContext: 'upstream-login', schema: UpstreamLoginStateSchema, ttl: LOGIN_TTL_SECONDS })
} as const

/**
 * Per-address counters (`<name>:<address>`, Store.incr) and @fastify/rate-limit's own keys
 * (`ratelimit:…`) are not records: they hold a number and count as anonymous.
 */
function kindOf (key: string): KeyKind | undefined {
  const colon = key.indexOf(':')
  return (KEY_KINDS as Record<string, KeyKind>)[colon === -1 ? key : key.slice(0, colon)]
}

export function recordClass (key: string): RecordClass {
  return kindOf(key)?.class ?? 'anonymous'
}

export function isDurableKey (key: string): boolean {
  return kindOf(key)?.durable === true
}
