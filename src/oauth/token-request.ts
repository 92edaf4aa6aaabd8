/**
 * Token request bodies (POST /oauth/token, RFC 6749 §4.1.3, §4.4 and §6, RFC 7523 §2.1): the
 * shape of each grant, checked before anything is looked up. Binding checks (code, PKCE,
 * resource, assertion) come after.
 */
import { type ClientAuthentication, parseClientAuthentication } from './client-auth.js'
import { OAuthError } from './errors.js'
import { type Params, singleParam } from './params.js'
import { parseScope } from './scopes.js'

export type TokenRequest =
  | {
    grantType: 'authorization_code'
    client: ClientAuthentication
    code: string
    redirectUri: string
    codeVerifier: string
    /** Raw: RFC 8707 allows it repeated; `resolveResource` decides. */
    resource?: string | string[]
  }
  | {
    grantType: 'client_credentials'
    client: ClientAuthentication
    scopes: string[]
    resource?: string | string[]
  }
  | {
    grantType: typeof JWT_BEARER_GRANT
    client: ClientAuthentication
    /** The ID-JAG. */
    assertion: string
    scopes: string[]
    resource?: string | string[]
  }
  | {
    grantType: 'refresh_token'
    client: ClientAuthentication
    refreshToken: string
    /** Empty: keep the granted scopes. */
    scopes: string[]
    resource?: string | string[]
  }

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

function required (body: Params, name: string): string {
  const value = singleParam(body, name)
  if (value === undefined) throw new OAuthError('invalid_request', `${name} is required`)
  return value
}

/** Parses a token request; throws the RFC 6749 §5.2 error for what is wrong. */
export function parseTokenRequest (body: Params, authorization: string | undefined): TokenRequest {
  const client = parseClientAuthentication(authorization, body)
  const grantType = required(body, 'grant_type')
  const resource = body.resource === '' ? undefined : body.resource
  switch (grantType) {
    case 'authorization_code':
      return {
        grantType,
        client,
        code: required(body, 'code'),
        redirectUri: required(body, 'redirect_uri'),
        codeVerifier: required(body, 'code_verifier'),
        resource
      }
    case 'refresh_token':
      return {
        grantType,
        client,
        refreshToken: required(body, 'refresh_token'),
        scopes: parseScope(singleParam(body, 'scope')),
        resource
      }
    case 'client_credentials':
      return { grantType, client, scopes: parseScope(singleParam(body, 'scope')), resource }
    case JWT_BEARER_GRANT:
      return { grantType, client, assertion: required(body, 'assertion'), scopes: parseScope(singleParam(body, 'scope')), resource }
    default:
      throw new OAuthError('unsupported_grant_type', `grant_type ${grantType} is not supported; use authorization_code, refresh_token, client_credentials or ${JWT_BEARER_GRANT}`)
  }
}
