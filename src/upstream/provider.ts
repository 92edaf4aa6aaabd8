/**
 * The upstream identity provider the gateway logs users in with (Google, any OIDC provider,
 * GitHub). The gateway speaks to it as one fixed confidential client.
 *
 * Why not @fastify/oauth2: it keeps the state and the PKCE verifier in browser cookies and
 * checks them itself, while the gateway's upstream state must be server-side, single-use and
 * shared by every replica (the callback may land on another one). OpenID providers go through
 * openid-client instead (./oidc.ts), which takes the state from the caller.
 */
import type { UpstreamIdentity } from '../oauth/allow-list.js'

export interface UpstreamTokens {
  access_token: string
  refresh_token?: string
  id_token?: string
  /** Seconds since the epoch. */
  expires_at?: number
  scope?: string
}

export interface UpstreamLogin {
  identity: UpstreamIdentity
  tokens: UpstreamTokens
}

export interface LoginStart {
  state: string
  nonce: string
  codeChallenge: string
  /** No upstream refresh token is held for this user yet: ask for offline access again. */
  offlineConsent: boolean
  /** The one allowed email domain, when there is exactly one (Google's `hd`). */
  domainHint?: string
}

/** What the gateway kept from starting the login: the answer must match it. */
export interface LoginChecks {
  /** The state the gateway sent, already matched to this browser's login server-side. */
  state: string
  codeVerifier: string
  nonce: string
}

export interface UpstreamProvider {
  readonly name: 'google' | 'oidc' | 'github'
  /** Origin of the login page: the consent form's answer redirects there. */
  readonly loginOrigin: string
  authorizationUrl: (start: LoginStart) => string
  /**
   * Redeems the code of the provider's answer (the callback's query: code, state, iss) and
   * proves who logged in; throws UpstreamLoginError.
   */
  exchange: (callback: URLSearchParams, checks: LoginChecks) => Promise<UpstreamLogin>
  /** A fresh access token for a held refresh token; throws UpstreamLoginError (`refused` when the grant is gone). */
  refresh: (refreshToken: string) => Promise<UpstreamTokens>
}

export interface UpstreamClient {
  clientId: string
  clientSecret: string
  redirectUri: string
  scopes: string[]
}

/** The provider failed or answered something that proves nothing; the user sees why on a page. */
export class UpstreamLoginError extends Error {
  /** The provider answered with an OAuth error (revoked or expired grant), not an outage. */
  readonly refused: boolean
  constructor (message: string, options?: { cause?: unknown, refused?: boolean }) {
    super(message, options)
    this.name = 'UpstreamLoginError'
    this.refused = options?.refused ?? false
  }
}
