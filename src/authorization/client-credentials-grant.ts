/**
 * The client-credentials grant (RFC 6749 §4.4; MCP extension
 * `io.modelcontextprotocol/oauth-client-credentials`): a pre-registered confidential client gets
 * a token for one of the routes it names, as itself (`sub` = its client id).
 */
import { gatewayScopes, type RouteConfig } from '../config/config-file.js'
import { OAuthError } from '../oauth/errors.js'
import { checkClientOnRoute, resolveResource } from '../oauth/resource.js'
import { knownScopes } from '../oauth/scopes.js'
import { checkNoProviderLogin, grantWithin, tokenResponse, type GrantClient, type Mint, type TokenResponse } from './route-token.js'

export interface ClientCredentialsRequest {
  scopes: string[]
  resource?: string | string[]
}

export interface ClientCredentialsDeps {
  routes: RouteConfig[]
  mint: Mint
  now: () => number
}

export function clientCredentialsGrant (deps: ClientCredentialsDeps): (client: GrantClient, request: ClientCredentialsRequest) => TokenResponse {
  const supported = gatewayScopes(deps.routes)
  return (client, request) => {
    if (!client.grant_types.includes('client_credentials')) {
      throw new OAuthError('unauthorized_client', 'this client may not use the client_credentials grant')
    }
    const mine = deps.routes.filter(r => client.allowed_routes?.includes(r.pattern) === true)
    // Like an older client without `resource`: unambiguous when the client has one route only.
    const route = resolveResource(request.resource ?? (mine.length === 1 ? mine[0].resourceUrl : undefined), deps.routes)
    if (!mine.includes(route)) throw new OAuthError('invalid_target', `this client may not get tokens for ${route.resourceUrl}`)
    checkClientOnRoute(route, client.client_id)
    checkNoProviderLogin(route)
    const scopes = grantWithin(knownScopes(request.scopes, supported), client.allowed_scopes, route)
    return tokenResponse(deps.mint, { sub: client.client_id, clientId: client.client_id, audience: route.resourceUrl, scopes }, deps.now())
  }
}
