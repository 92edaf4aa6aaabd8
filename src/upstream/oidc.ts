/**
 * OpenID Connect login (authorization code + PKCE + state + nonce) for Google and any OIDC
 * provider, through openid-client (certified relying party): discovery, the authorization
 * response's `iss` (RFC 9207), the ID token (signature against the cached JWKS, `iss`, `aud`,
 * `exp`, `nonce`), and userinfo when the ID token carries no email (OIDC Core §5.4: with
 * `response_type=code` a provider may return the scope claims from userinfo only).
 */
import * as oidc from 'openid-client'
import {
  UpstreamLoginError,
  type LoginChecks, type LoginStart, type UpstreamClient, type UpstreamLogin, type UpstreamProvider, type UpstreamTokens
} from './provider.js'
import type { UpstreamIdentity } from '../oauth/allow-list.js'
import { boundedFetch, describeProviderError, isLoopbackHttp, PROVIDER_TIMEOUT_SECONDS } from './provider-http.js'

/** Google's fixed endpoints (https://accounts.google.com/.well-known/openid-configuration). */
export const GOOGLE_METADATA: oidc.ServerMetadata = {
  issuer: 'https://accounts.google.com',
  authorization_endpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
  token_endpoint: 'https://oauth2.googleapis.com/token',
  userinfo_endpoint: 'https://openidconnect.googleapis.com/v1/userinfo',
  jwks_uri: 'https://www.googleapis.com/oauth2/v3/certs',
  token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic']
}

const ENDPOINTS = ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri'] as const

/**
 * Reads the provider's discovery document once, at start-up; openid-client checks that it names
 * the issuer it was fetched for. http is allowed only for a provider on a loopback address
 * (tests, a provider beside the gateway), and then for none of its endpoints elsewhere.
 */
export async function discoverOidc (issuer: string): Promise<oidc.ServerMetadata> {
  const url = new URL(issuer)
  const insecure = isLoopbackHttp(url)
  if (url.protocol !== 'https:' && !insecure) throw new UpstreamLoginError('the issuer must be an https URL (http only on a loopback address)')
  let metadata: oidc.ServerMetadata
  try {
    // The client id is not used by discovery; the provider is configured with the real one below.
    const config = await oidc.discovery(url, 'discovery', undefined, undefined, {
      execute: insecure ? [oidc.allowInsecureRequests] : [],
      timeout: PROVIDER_TIMEOUT_SECONDS,
      [oidc.customFetch]: boundedFetch
    })
    metadata = config.serverMetadata()
  } catch (err) {
    throw new UpstreamLoginError(describeProviderError(err))
  }
  for (const name of ENDPOINTS) {
    const endpoint = metadata[name]
    if (endpoint === undefined) continue
    const parsed = new URL(endpoint)
    if (parsed.protocol !== 'https:' && !(insecure && isLoopbackHttp(parsed))) {
      throw new UpstreamLoginError(`the discovery document's ${name} is not an https URL`)
    }
  }
  if (metadata.authorization_endpoint === undefined || metadata.token_endpoint === undefined || metadata.jwks_uri === undefined) {
    throw new UpstreamLoginError('the discovery document lacks an authorization, token or JWKS endpoint')
  }
  return metadata
}

interface OidcOptions {
  name: 'google' | 'oidc'
  /** Provider-specific authorization parameters. */
  extraParams?: (start: LoginStart) => Record<string, string | undefined>
}

/** The gateway's client at the provider: RFC 6749 §2.3.1 Basic unless the provider offers post only. */
function configuration (metadata: oidc.ServerMetadata, client: UpstreamClient): oidc.Configuration {
  const methods = metadata.token_endpoint_auth_methods_supported ?? ['client_secret_basic']
  const auth = methods.includes('client_secret_basic') ? oidc.ClientSecretBasic(client.clientSecret) : oidc.ClientSecretPost(client.clientSecret)
  const config = new oidc.Configuration(metadata, client.clientId, client.clientSecret, auth)
  if (isLoopbackHttp(new URL(metadata.issuer))) oidc.allowInsecureRequests(config)
  config.timeout = PROVIDER_TIMEOUT_SECONDS
  config[oidc.customFetch] = boundedFetch
  return config
}

function keptTokens (response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): UpstreamTokens {
  const expiresIn = response.expiresIn()
  return {
    access_token: response.access_token,
    refresh_token: response.refresh_token,
    id_token: response.id_token,
    expires_at: expiresIn === undefined ? undefined : Math.floor(Date.now() / 1000) + expiresIn,
    scope: response.scope
  }
}

/** A claims object's email, its verification (some providers send the string "true") and the name. */
function emailClaims (claims: Record<string, unknown>): Pick<UpstreamIdentity, 'email' | 'emailVerified' | 'name'> {
  return {
    email: typeof claims.email === 'string' ? claims.email : undefined,
    emailVerified: claims.email_verified === true || claims.email_verified === 'true',
    name: typeof claims.name === 'string' ? claims.name : undefined
  }
}

function oidcProvider (metadata: oidc.ServerMetadata, client: UpstreamClient, opts: OidcOptions): UpstreamProvider {
  const config = configuration(metadata, client)
  const hasUserinfo = metadata.userinfo_endpoint !== undefined

  const call = async <T>(step: string, what: Promise<T>): Promise<T> => await what.catch(err => {
    // A 4xx OAuth error answer (revoked or expired grant) is a refusal, not an outage.
    const refused = err instanceof oidc.ResponseBodyError && err.status < 500
    // Only the description: openid-client's causes may hold the response, tokens and claims.
    throw new UpstreamLoginError(`${step}: ${describeProviderError(err)}`, { refused })
  })

  return {
    name: opts.name,
    loginOrigin: new URL(metadata.authorization_endpoint as string).origin,
    authorizationUrl: start => {
      const params: Record<string, string> = {
        redirect_uri: client.redirectUri,
        scope: client.scopes.join(' '),
        state: start.state,
        nonce: start.nonce,
        code_challenge: start.codeChallenge,
        code_challenge_method: 'S256'
      }
      for (const [name, value] of Object.entries(opts.extraParams?.(start) ?? {})) if (value !== undefined) params[name] = value
      return oidc.buildAuthorizationUrl(config, params).href
    },

    async exchange (callback, checks: LoginChecks): Promise<UpstreamLogin> {
      // openid-client derives the token request's redirect_uri from this URL.
      const current = new URL(client.redirectUri)
      for (const [name, value] of callback) current.searchParams.append(name, value)
      const response = await call('code exchange', oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true
      }))
      const idToken = response.claims() as oidc.IDToken
      let claims = emailClaims(idToken)
      // Only when the ID token is silent: a provider that puts everything there costs no extra request.
      if (claims.email === undefined && hasUserinfo) {
        // openid-client refuses a userinfo answer whose sub is not the ID token's.
        claims = emailClaims(await call('userinfo', oidc.fetchUserInfo(config, response.access_token, idToken.sub)))
      }
      return {
        identity: {
          sub: idToken.sub,
          ...claims,
          // `hd` means something only from Google; any other provider may put anything there.
          hostedDomain: opts.name === 'google' && typeof idToken.hd === 'string' ? idToken.hd : undefined
        },
        tokens: keptTokens(response)
      }
    },

    refresh: async refreshToken => keptTokens(await call('refresh', oidc.refreshTokenGrant(config, refreshToken)))
  }
}

/**
 * Any OpenID provider: while no refresh token is held for the user, `offline_access` with
 * `prompt=consent` (OIDC Core §11), when the provider lists that scope; without it, spec-default
 * providers issue no refresh token and `upstream_auth: provider_token` would end with the first
 * access token.
 */
export function genericOidcProvider (metadata: oidc.ServerMetadata, client: UpstreamClient): UpstreamProvider {
  const offered = metadata.scopes_supported?.includes('offline_access') === true
  const offlineScope = [...client.scopes.filter(s => s !== 'offline_access'), 'offline_access'].join(' ')
  return oidcProvider(metadata, client, {
    name: 'oidc',
    extraParams: start => offered && start.offlineConsent ? { scope: offlineScope, prompt: 'consent' } : {}
  })
}

/** Google: offline access for a refresh token, `prompt=consent` until one is held, `hd` hint. */
export function googleProvider (client: UpstreamClient): UpstreamProvider {
  return oidcProvider(GOOGLE_METADATA, client, {
    name: 'google',
    extraParams: start => ({
      access_type: 'offline',
      prompt: start.offlineConsent ? 'consent' : undefined,
      hd: start.domainHint
    })
  })
}
