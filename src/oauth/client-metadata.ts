/**
 * Client metadata (RFC 7591 §2): what Dynamic Client Registration accepts and what a Client ID
 * Metadata Document may say, reduced to the record the gateway keeps. Unknown fields are ignored
 * (RFC 7591 §2: clients send `application_type`, `logo_uri`, ... that we have no use for).
 */
import { OAuthError } from './errors.js'
import { validateRedirectUriForRegistration } from './redirect-uri.js'
import { randomToken } from './secrets.js'

/** Machine grants (client credentials, ID-JAG) belong to pre-registered clients only. */
export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials' | 'urn:ietf:params:oauth:grant-type:jwt-bearer'
export type TokenEndpointAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt'

export interface ClientMetadata {
  redirect_uris: string[]
  grant_types: GrantType[]
  response_types: ['code']
  token_endpoint_auth_method: TokenEndpointAuthMethod
  client_name?: string
}

export interface ClientMetadataRules {
  /** Methods this kind of client may use. */
  authMethods: readonly TokenEndpointAuthMethod[]
  /** The method when the metadata names none. */
  defaultAuthMethod: TokenEndpointAuthMethod
}

/** RFC 7591 §2: `client_secret_basic` when omitted. Public MCP clients send `none` themselves. */
export const DCR_RULES: ClientMetadataRules = {
  authMethods: ['none', 'client_secret_basic', 'client_secret_post'],
  defaultAuthMethod: 'client_secret_basic'
}

const GRANT_TYPES: readonly GrantType[] = ['authorization_code', 'refresh_token']
const MAX_REDIRECT_URIS = 10
const MAX_LIST = 10
const MAX_CLIENT_NAME = 100
/** Control characters and bidi overrides would let a name disguise itself on the consent page. */
const UNSAFE_TEXT = /[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]/u

function invalid (description: string): never {
  throw new OAuthError('invalid_client_metadata', description)
}

function stringList (value: unknown, field: string, fallback: string[]): string[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_LIST ||
      !value.every(v => typeof v === 'string')) {
    return invalid(`${field} must be a list of 1-${MAX_LIST} strings`)
  }
  return [...new Set(value as string[])]
}

/**
 * Validates registration metadata. Throws `invalid_redirect_uri` for a bad redirect URI and
 * `invalid_client_metadata` for anything else, each with what was wrong.
 */
export function validateClientMetadata (input: unknown, rules: ClientMetadataRules = DCR_RULES): ClientMetadata {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return invalid('client metadata must be a JSON object')
  }
  const body = input as Record<string, unknown>

  const uris = body.redirect_uris
  if (!Array.isArray(uris) || uris.length === 0) invalid('redirect_uris is required: a non-empty list')
  if (uris.length > MAX_REDIRECT_URIS) invalid(`at most ${MAX_REDIRECT_URIS} redirect_uris`)
  const redirectUris = [...new Set(uris.map(validateRedirectUriForRegistration))]

  const grantTypes = stringList(body.grant_types, 'grant_types', ['authorization_code'])
  const unsupportedGrant = grantTypes.find(g => !GRANT_TYPES.includes(g as GrantType))
  if (unsupportedGrant !== undefined) {
    invalid(`grant type ${unsupportedGrant} is not supported; use authorization_code and refresh_token`)
  }
  // RFC 7591 §2.1: response type `code` goes with the authorization_code grant.
  if (!grantTypes.includes('authorization_code')) invalid('grant_types must include authorization_code')

  const responseTypes = stringList(body.response_types, 'response_types', ['code'])
  if (responseTypes.length !== 1 || responseTypes[0] !== 'code') invalid('response_types must be ["code"]')

  const method = body.token_endpoint_auth_method ?? rules.defaultAuthMethod
  if (typeof method !== 'string' || !rules.authMethods.includes(method as TokenEndpointAuthMethod)) {
    invalid(`token_endpoint_auth_method must be one of ${rules.authMethods.join(', ')}`)
  }

  const metadata: ClientMetadata = {
    redirect_uris: redirectUris,
    grant_types: grantTypes as GrantType[],
    response_types: ['code'],
    token_endpoint_auth_method: method as TokenEndpointAuthMethod
  }
  if (body.client_name !== undefined) {
    const name = body.client_name
    if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_CLIENT_NAME || UNSAFE_TEXT.test(name)) {
      invalid(`client_name must be 1-${MAX_CLIENT_NAME} printable characters`)
    }
    metadata.client_name = name.trim()
  }
  return metadata
}

/**
 * A new client id (128 random bits) and, for confidential clients, a secret (256 random bits).
 * Only the secret's hash (`hashSecret`) is stored; the secret is shown once, in the 201 response.
 */
export function generateClientCredentials (method: TokenEndpointAuthMethod): { clientId: string, clientSecret?: string } {
  const clientId = randomToken(16)
  return method === 'none' ? { clientId } : { clientId, clientSecret: randomToken(32) }
}
