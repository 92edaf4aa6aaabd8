/**
 * OpenID Connect login (authorization code + PKCE + nonce) for Google and any OIDC provider:
 * the ID token is verified against the provider's JWKS (signature, `iss`, `aud`, `exp`, `nonce`)
 * before its email is believed.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { createVerifier } from 'fast-jwt'
import {
  callProvider, upstreamTokens, withQuery, UpstreamLoginError,
  type LoginStart, type UpstreamClient, type UpstreamLogin, type UpstreamProvider, type UpstreamTokens
} from './provider.js'

export interface OidcMetadata {
  issuer: string
  authorization_endpoint: string
  token_endpoint: string
  jwks_uri: string
  token_endpoint_auth_methods_supported?: string[]
}

/** Google's fixed endpoints (https://accounts.google.com/.well-known/openid-configuration). */
export const GOOGLE_METADATA: OidcMetadata = {
  issuer: 'https://accounts.google.com',
  authorization_endpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
  token_endpoint: 'https://oauth2.googleapis.com/token',
  jwks_uri: 'https://www.googleapis.com/oauth2/v3/certs',
  token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic']
}

/** Reads the provider's discovery document once, at start-up. */
export async function discoverOidc (issuer: string): Promise<OidcMetadata> {
  const doc = await callProvider(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)
  for (const field of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri']) {
    if (typeof doc[field] !== 'string') throw new UpstreamLoginError(`the discovery document of ${issuer} has no ${field}`)
  }
  // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
  if (doc.issuer !== issuer) throw new UpstreamLoginError(`the discovery document of ${issuer} names another issuer (${String(doc.issuer)})`)
  return doc as unknown as OidcMetadata
}

const JWKS_MIN_REFRESH_MS = 30_000
const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const

/** Public keys by kid; an unknown kid refetches the set, at most every 30 s (key rotation). */
class Jwks {
  #keys = new Map<string, string>()
  #fetchedAt = 0

  constructor (private readonly uri: string) {}

  async key (kid: string | undefined): Promise<string> {
    if (kid === undefined) throw new UpstreamLoginError('the ID token has no kid')
    let pem = this.#keys.get(kid)
    if (pem === undefined && Date.now() - this.#fetchedAt > JWKS_MIN_REFRESH_MS) {
      await this.#refresh()
      pem = this.#keys.get(kid)
    }
    if (pem === undefined) throw new UpstreamLoginError('the ID token was signed with a key the provider does not publish')
    return pem
  }

  async #refresh (): Promise<void> {
    const body = await callProvider(this.uri)
    const keys = new Map<string, string>()
    for (const jwk of Array.isArray(body.keys) ? body.keys as Array<JsonWebKey & { kid?: string, use?: string }> : []) {
      if (typeof jwk.kid !== 'string' || (jwk.use !== undefined && jwk.use !== 'sig')) continue
      try {
        keys.set(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString())
      } catch {
        // A key type Node cannot import cannot have signed a token we accept.
      }
    }
    this.#keys = keys
    this.#fetchedAt = Date.now()
  }
}

export interface OidcOptions {
  name: 'google' | 'oidc'
  /** Issuers the ID token may name (Google also uses the bare host). */
  issuers: string[]
  /** Provider-specific authorization parameters. */
  extraParams?: (start: LoginStart) => Record<string, string | undefined>
}

export function oidcProvider (metadata: OidcMetadata, client: UpstreamClient, opts: OidcOptions): UpstreamProvider {
  const jwks = new Jwks(metadata.jwks_uri)
  // RFC 6749 §2.3.1: Basic is what every server must support; post only when it is all there is.
  const methods = metadata.token_endpoint_auth_methods_supported ?? ['client_secret_basic']
  const basic = methods.includes('client_secret_basic')
  const encode = (v: string): string => encodeURIComponent(v).replace(/%20/g, '+')
  // A token endpoint call with the gateway's client authentication.
  const tokenCall = async (form: Record<string, string>): Promise<UpstreamTokens> => {
    const headers: Record<string, string> = {}
    if (basic) {
      headers.authorization = `Basic ${Buffer.from(`${encode(client.clientId)}:${encode(client.clientSecret)}`).toString('base64')}`
    } else {
      form.client_id = client.clientId
      form.client_secret = client.clientSecret
    }
    return upstreamTokens(await callProvider(metadata.token_endpoint, { form, headers }))
  }

  return {
    name: opts.name,
    loginOrigin: new URL(metadata.authorization_endpoint).origin,
    authorizationUrl: start => withQuery(metadata.authorization_endpoint, {
      response_type: 'code',
      client_id: client.clientId,
      redirect_uri: client.redirectUri,
      scope: client.scopes.join(' '),
      state: start.state,
      nonce: start.nonce,
      code_challenge: start.codeChallenge,
      code_challenge_method: 'S256',
      ...opts.extraParams?.(start)
    }),

    async exchange (code, codeVerifier, nonce): Promise<UpstreamLogin> {
      const tokens = await tokenCall({ grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: codeVerifier })
      if (tokens.id_token === undefined) throw new UpstreamLoginError('the provider returned no ID token (is the openid scope requested?)')
      const verify = createVerifier({
        key: async ({ header }: { header: { kid?: string } }) => await jwks.key(header.kid),
        algorithms: [...ID_TOKEN_ALGORITHMS],
        allowedIss: opts.issuers,
        allowedAud: client.clientId,
        allowedNonce: nonce,
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'nonce']
      })
      let claims: Record<string, unknown>
      try {
        claims = await verify(tokens.id_token)
      } catch (err) {
        throw new UpstreamLoginError(`the ID token is not valid: ${(err as Error).message}`, { cause: err })
      }
      return {
        identity: {
          sub: String(claims.sub),
          email: typeof claims.email === 'string' ? claims.email : undefined,
          // Some providers send the string "true".
          emailVerified: claims.email_verified === true || claims.email_verified === 'true',
          // `hd` means something only from Google; any other provider may put anything there.
          hostedDomain: opts.name === 'google' && typeof claims.hd === 'string' ? claims.hd : undefined
        },
        tokens
      }
    },

    refresh: async refreshToken => await tokenCall({ grant_type: 'refresh_token', refresh_token: refreshToken })
  }
}

/** Google: offline access for a refresh token, `prompt=consent` until one is held, `hd` hint. */
export function googleProvider (client: UpstreamClient): UpstreamProvider {
  return oidcProvider(GOOGLE_METADATA, client, {
    name: 'google',
    issuers: ['https://accounts.google.com', 'accounts.google.com'],
    extraParams: start => ({
      access_type: 'offline',
      prompt: start.offlineConsent ? 'consent' : undefined,
      hd: start.domainHint
    })
  })
}
