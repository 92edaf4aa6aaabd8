/**
 * The authorization request (GET /oauth/authorize), checked in the order that keeps it safe:
 * client and redirect URI first, because until both are known to belong together an error must
 * be shown to the user, never sent to the URI (that would be an open redirector). After that,
 * errors go back to the client on its redirect URI, with `state` and `iss` (RFC 9207).
 */
import { ErrorPage, OAuthError } from './errors.js'
import { validateCodeChallenge } from './pkce.js'
import { type Params, singleParam } from './params.js'
import { matchRedirectUri } from './redirect-uri.js'
import { checkClientOnRoute, type ResourceRoute, resolveResource } from './resource.js'
import { knownScopes, parseScope } from './scopes.js'

export interface AuthorizeClient {
  client_id: string
  redirect_uris: readonly string[]
  client_name?: string
}

export interface AuthorizeContext<R extends ResourceRoute> {
  /** BASE_URL, byte for byte: the `iss` of every response. */
  issuer: string
  /** Pre-registered, metadata document or DCR client; undefined when unknown. */
  findClient: (clientId: string) => Promise<AuthorizeClient | undefined>
  routes: readonly R[]
  supportedScopes: readonly string[]
  /** Granted when the request names no scope. */
  defaultScopes: readonly string[]
}

export interface AuthorizationRequest<R extends ResourceRoute> {
  client: AuthorizeClient
  /** As requested (on loopback its port may differ from the registered one); the code is bound to it. */
  redirectUri: string
  codeChallenge: string
  route: R
  scopes: string[]
  state?: string
}

export type AuthorizeOutcome<R extends ResourceRoute> =
  | { ok: true, request: AuthorizationRequest<R> }
  /** Redirect the browser to `redirectTo`; `error` is for logs and metrics. */
  | { ok: false, error: OAuthError, redirectTo: string }

/** Generous for clients that pack data into state, small enough to keep out abuse. */
const MAX_STATE_LENGTH = 4096

/** Appends parameters to a redirect URI, keeping any query it already has (RFC 6749 §3.1.2). */
export function buildAuthorizationRedirect (redirectUri: string, params: Record<string, string | undefined>): string {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) query.append(name, value)
  }
  const separator = !redirectUri.includes('?') ? '?' : /[?&]$/.test(redirectUri) ? '' : '&'
  return redirectUri + separator + query.toString()
}

/** An error response on the redirect URI (RFC 6749 §4.1.2.1, RFC 9207). */
export function errorRedirect (redirectUri: string, error: OAuthError, state: string | undefined, issuer: string): string {
  return buildAuthorizationRedirect(redirectUri, {
    error: error.code,
    error_description: error.message,
    state,
    iss: issuer
  })
}

const pageError = (title: string) => (message: string) => new ErrorPage(title, message)

async function clientAndRedirect (query: Params, findClient: AuthorizeContext<ResourceRoute>['findClient']): Promise<{ client: AuthorizeClient, redirectUri: string }> {
  const clientId = singleParam(query, 'client_id', pageError('Invalid request'))
  if (clientId === undefined) throw new ErrorPage('Invalid request', 'The request names no application (client_id is missing).')
  let client: AuthorizeClient | undefined
  try {
    client = await findClient(clientId)
  } catch (err) {
    // A metadata document that cannot be fetched or is invalid: tell the user why, on a page.
    if (err instanceof OAuthError) {
      throw new ErrorPage('Unknown application', err.message)
    }
    throw err
  }
  if (client === undefined) {
    throw new ErrorPage('Unknown application', 'This application is not registered with the gateway. Try connecting again from the application.')
  }
  const requested = singleParam(query, 'redirect_uri', pageError('Invalid redirect address'))
  if (requested === undefined) {
    throw new ErrorPage('Invalid redirect address', 'The request names no redirect address (redirect_uri is missing).')
  }
  if (matchRedirectUri(requested, client.redirect_uris) === undefined) {
    throw new ErrorPage('Invalid redirect address', 'The redirect address is not one this application registered, so the gateway will not send you there.')
  }
  return { client, redirectUri: requested }
}

/**
 * Validates an authorization request. Throws `ErrorPage` while the client or its redirect URI
 * is in doubt; every later problem is returned as a redirect back to the client.
 */
export async function validateAuthorizeRequest<R extends ResourceRoute> (query: Params, ctx: AuthorizeContext<R>): Promise<AuthorizeOutcome<R>> {
  const { client, redirectUri } = await clientAndRedirect(query, ctx.findClient)
  // Echoed in error redirects before it is itself validated, as long as it is a single value.
  const echoedState = typeof query.state === 'string' && query.state !== '' && query.state.length <= MAX_STATE_LENGTH
    ? query.state
    : undefined
  try {
    const responseType = singleParam(query, 'response_type')
    if (responseType === undefined) throw new OAuthError('invalid_request', 'response_type is required')
    if (responseType !== 'code') {
      throw new OAuthError('unsupported_response_type', `response_type must be code, not ${responseType}`)
    }
    const codeChallenge = validateCodeChallenge(
      singleParam(query, 'code_challenge'),
      singleParam(query, 'code_challenge_method'))
    const route = resolveResource(query.resource, ctx.routes)
    checkClientOnRoute(route, client.client_id)
    const requestedScopes = knownScopes(parseScope(singleParam(query, 'scope')), ctx.supportedScopes)
    const scopes = requestedScopes.length === 0 ? [...ctx.defaultScopes] : requestedScopes
    const state = singleParam(query, 'state')
    if (state !== undefined && state.length > MAX_STATE_LENGTH) {
      throw new OAuthError('invalid_request', `state longer than ${MAX_STATE_LENGTH} characters`)
    }
    return { ok: true, request: { client, redirectUri, codeChallenge, route, scopes, state } }
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err
    return { ok: false, error: err, redirectTo: errorRedirect(redirectUri, err, echoedState, ctx.issuer) }
  }
}
