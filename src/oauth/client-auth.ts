/**
 * Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
 * `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523, verified by
 * `client-assertion.ts`), or `none` (a public client names itself).
 */
import { decodeJwt } from 'jose'
import { CLIENT_ASSERTION_TYPE } from './client-assertion.js'
import type { TokenEndpointAuthMethod } from './client-metadata.js'
import { OAuthError } from './errors.js'
import { type Params, singleParam } from './params.js'
import { verifySecret } from './secrets.js'

export type ClientAuthentication =
  | { method: 'client_secret_basic' | 'client_secret_post', clientId: string, clientSecret: string }
  | { method: 'private_key_jwt', clientId: string, assertion: string }
  | { method: 'none', clientId: string }

/** What a stored client needs for authentication. */
export interface AuthenticatingClient {
  token_endpoint_auth_method: TokenEndpointAuthMethod
  /** `hashSecret` of the secret; confidential clients only. */
  client_secret_hash?: string
}

/** RFC 6749 §5.2: a failed Authorization-header authentication answers 401 with a challenge. */
const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="mcp-gateway", charset="UTF-8"' }

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding. */
function formDecode (value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '))
}

function parseBasic (authorization: string): { clientId: string, clientSecret: string } {
  const basicFailure = (why: string): never => {
    throw new OAuthError('invalid_client', why, { headers: BASIC_CHALLENGE })
  }
  const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(authorization)
  if (match === null) return basicFailure('the Authorization header must be HTTP Basic with the client credentials')
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 1) return basicFailure('the Basic credentials must be client_id:client_secret')
  try {
    return { clientId: formDecode(decoded.slice(0, colon)), clientSecret: formDecode(decoded.slice(colon + 1)) }
  } catch {
    return basicFailure('the Basic credentials are not form-urlencoded correctly')
  }
}

/** RFC 7523 §3: the assertion's `sub` is the client id; the body's `client_id` is optional. */
function parseAssertion (body: Params, bodyId: string | undefined): ClientAuthentication {
  const type = singleParam(body, 'client_assertion_type')
  const assertion = singleParam(body, 'client_assertion')
  if (type !== CLIENT_ASSERTION_TYPE) throw new OAuthError('invalid_client', `client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`)
  if (assertion === undefined) throw new OAuthError('invalid_client', 'client_assertion is required with client_assertion_type')
  let sub: unknown
  try {
    sub = decodeJwt(assertion).sub
  } catch {
    throw new OAuthError('invalid_client', 'client_assertion is not a JWT')
  }
  if (typeof sub !== 'string' || sub === '') throw new OAuthError('invalid_client', 'client_assertion must name the client in sub')
  if (bodyId !== undefined && bodyId !== sub) throw new OAuthError('invalid_client', 'client_id differs from the client assertion\'s sub')
  return { method: 'private_key_jwt', clientId: sub, assertion }
}

/** Reads how the client authenticates; checks nothing against stored clients yet. */
export function parseClientAuthentication (authorization: string | undefined, body: Params): ClientAuthentication {
  const bodyId = singleParam(body, 'client_id')
  const bodySecret = singleParam(body, 'client_secret')
  const asserted = body.client_assertion_type !== undefined || body.client_assertion !== undefined
  // RFC 6749 §2.3: a client uses one authentication method per request.
  const methods = [authorization !== undefined && authorization !== '', bodySecret !== undefined, asserted].filter(Boolean).length
  if (methods > 1) throw new OAuthError('invalid_request', 'send one client authentication, not both: the Authorization header, client_secret or client_assertion')
  if (asserted) return parseAssertion(body, bodyId)
  if (authorization !== undefined && authorization !== '') {
    const { clientId, clientSecret } = parseBasic(authorization)
    if (bodyId !== undefined && bodyId !== clientId) {
      throw new OAuthError('invalid_request', 'client_id in the body differs from the Authorization header')
    }
    return { method: 'client_secret_basic', clientId, clientSecret }
  }
  if (bodyId === undefined) {
    throw new OAuthError('invalid_client', 'client authentication is missing: send client_id (and the secret, for a confidential client)')
  }
  if (bodySecret !== undefined) return { method: 'client_secret_post', clientId: bodyId, clientSecret: bodySecret }
  return { method: 'none', clientId: bodyId }
}

/**
 * Checks the credentials against the stored client. A confidential client may send its secret
 * either way (basic or post): both prove the same secret. A `private_key_jwt` client must send
 * an assertion, whose verification is left to the caller. Every failure is `invalid_client`
 * with one wording on the wire, so a caller cannot learn whether a client id exists; why it
 * failed is the error's message, for the log.
 */
export function authenticateClient (auth: ClientAuthentication, client: AuthenticatingClient | undefined): void {
  const headers = auth.method === 'client_secret_basic' ? BASIC_CHALLENGE : undefined
  const fail = (why: string): never => {
    throw new OAuthError('invalid_client', why, { headers, publicDescription: 'client authentication failed' })
  }
  if (client === undefined) fail('unknown client')
  else if (client.token_endpoint_auth_method === 'none') {
    if (auth.method !== 'none') fail('this client is public and has no secret; authenticate with client_id only')
  } else if (client.token_endpoint_auth_method === 'private_key_jwt' || auth.method === 'private_key_jwt') {
    if (client.token_endpoint_auth_method !== auth.method) fail('this client must authenticate with its registered method')
  } else if (auth.method === 'none') {
    fail('this client is confidential: client authentication with its secret is required')
  } else if (client.client_secret_hash === undefined || !verifySecret(auth.clientSecret, client.client_secret_hash)) {
    fail('client authentication failed')
  }
}
