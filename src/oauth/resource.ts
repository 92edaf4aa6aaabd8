/**
 * Resource indicators (RFC 8707): the `resource` of /authorize and /token names the route the
 * token is for, and becomes its audience.
 */
import { OAuthError } from './errors.js'

export interface ResourceRoute {
  /** The route's path, e.g. `/calc/mcp`. */
  pattern: string
  /** Its public URL, `BASE_URL + pattern`: the `resource` of its protected-resource metadata. */
  resourceUrl: string
  /** Client ids that may get tokens for it (`allowed_clients`); empty or absent: any client. */
  allowedClients?: readonly string[]
}

/** Per-route `allowed_clients`, at every grant: RFC 8707 §2 lets the server refuse a resource to a client. */
export function checkClientOnRoute (route: ResourceRoute, clientId: string): void {
  if (route.allowedClients !== undefined && route.allowedClients.length > 0 && !route.allowedClients.includes(clientId)) {
    throw new OAuthError('invalid_target', `this client may not get tokens for ${route.resourceUrl}`)
  }
}

/**
 * Compares resource URIs the way clients write them: the URL parser lower-cases scheme and host
 * and drops a default port; one trailing slash is ignored. Query and path stay exact.
 */
function normaliseResource (value: string): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined
  return url.origin + url.pathname.replace(/\/$/, '') + url.search
}

/**
 * The route a request's `resource` names.
 *
 * - Missing: the only route when there is exactly one (clients older than RFC 8707 support),
 *   else `invalid_target`.
 * - Given more than once: `invalid_target`. RFC 8707 lets a client ask for several resources,
 *   and `invalid_target` is its code for a resource set the server will not issue for; a token
 *   here has one route as audience, so a token for several could open all of them.
 * - Not absolute, with a fragment (RFC 8707 §2), or naming no route: `invalid_target`.
 */
export function resolveResource<R extends ResourceRoute> (
  resource: string | readonly string[] | undefined,
  routes: readonly R[]
): R {
  if (resource === undefined) {
    if (routes.length === 1) return routes[0]
    throw new OAuthError('invalid_target',
      'resource is required: this gateway serves several MCP servers; send the URL of the one you want')
  }
  if (typeof resource !== 'string') {
    if (resource.length !== 1) {
      throw new OAuthError('invalid_target', 'exactly one resource is allowed: a token is issued for one MCP server')
    }
    return resolveResource(resource[0], routes)
  }
  if (resource.includes('#')) {
    throw new OAuthError('invalid_target', 'resource must not contain a fragment')
  }
  const wanted = normaliseResource(resource)
  if (wanted === undefined) {
    throw new OAuthError('invalid_target', 'resource must be an absolute http(s) URL')
  }
  const route = routes.find(r => normaliseResource(r.resourceUrl) === wanted)
  if (route === undefined) {
    throw new OAuthError('invalid_target', `resource ${resource} is not an MCP server of this gateway`)
  }
  return route
}
