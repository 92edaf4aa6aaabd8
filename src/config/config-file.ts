import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { ConfigError, parseConfigUrl } from './config-error.js'
import { checkConfigFile, CLIENT_GRANT_TYPES, CLIENT_AUTH_METHODS, type ClientEntry, type RouteEntry, type ToolsEntry } from './config-schema.js'
import type { Env } from './env.js'
import { JWT_BEARER_GRANT } from '../oauth/token-request.js'
import { ToolPolicy } from '../policy/tool-policy.js'

/** What the gateway sends the upstream, per `upstream_auth`; header names lower-cased. */
export type RouteUpstream =
  | { auth: 'none' }
  | { auth: 'identity' }
  /** The user's provider token, as `Bearer` in Authorization or bare in another header. */
  | { auth: 'provider_token', headerName: string }
  | { auth: 'header', headerName: string, value: string }

/** A proxied MCP route with everything derived from BASE_URL computed once. */
export interface RouteConfig {
  pattern: string
  targetUrl: string
  /** RFC 8707 resource identifier and token audience: BASE_URL + pattern. */
  resourceUrl: string
  /** RFC 9728 metadata document for this route. */
  metadataUrl: string
  allowedEmails: string[]
  allowedDomains: string[]
  /** Client ids that may get tokens for the route; empty: any client. */
  allowedClients: string[]
  upstream: RouteUpstream
  scopes: string[]
  /** Per-tool rules; absent: every tool the upstream offers. */
  toolPolicy?: ToolPolicy
  /** Whether audit records carry tool arguments. */
  auditArguments: boolean
}

export type ClientGrantType = typeof CLIENT_GRANT_TYPES[number]
export type ClientAuthMethod = typeof CLIENT_AUTH_METHODS[number]

/** A pre-registered client (config.yaml `clients`). */
export interface ClientConfig {
  clientId: string
  clientName: string
  redirectUris: string[]
  grantTypes: ClientGrantType[]
  authMethod: ClientAuthMethod
  clientSecret?: string
  /** private_key_jwt: its public keys, inline or where to fetch them. */
  jwks?: { keys: Array<Record<string, unknown>> }
  jwksUri?: string
  /** Route patterns it may get tokens for by client_credentials. */
  routes: string[]
  /** Scopes it may get there; undefined: each route's own. */
  scopes?: string[]
}

/** An enterprise identity provider whose ID-JAGs (SEP-990) the token endpoint accepts. */
export interface TrustedIdp {
  issuer: string
  jwksUri: string
  /** Claim name → values accepted; every listed claim must match. */
  claims: Record<string, string[]>
}

export interface GatewayRoutes {
  routes: RouteConfig[]
  clients: ClientConfig[]
  trustedIdps: TrustedIdp[]
}

/** Every scope a token for the route may carry: its own, and those its tools ask for (step-up). */
export function grantableScopes (route: RouteConfig): string[] {
  return [...new Set([...route.scopes, ...route.toolPolicy?.toolScopes ?? []])]
}

/** Every scope some route grants: what the gateway knows (anything else is left out of a grant). */
export function gatewayScopes (routes: readonly RouteConfig[]): string[] {
  return [...new Set(routes.flatMap(grantableScopes))]
}

export const DEFAULT_ROUTE_SCOPES = ['mcp']
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const FORBIDDEN_UPSTREAM_HEADERS = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'mcp-session-id'])

export function readConfigFile (path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError('CONFIG_FILE', `cannot be read (${path}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  try {
    return parseYaml(text)
  } catch (err) {
    throw new ConfigError('CONFIG_FILE', `is not valid YAML (${path}): ${(err as Error).message.split('\n')[0]}`)
  }
}

/**
 * Turns the parsed config.yaml into routes, clients and trusted identity providers: the schema
 * checks each field, then the rules that relate fields, each failure naming its entry.
 */
export function buildRoutes (raw: unknown, env: Env, variables: Record<string, string | undefined>): GatewayRoutes {
  const file = checkConfigFile(raw)
  const seen = new Set<string>()
  const routes = file.proxies.map((entry, i) => buildRoute(entry, `proxies[${i}]`, env, variables, seen))
  const ids = new Set<string>()
  const clients = (file.clients ?? []).map((entry, i) => buildClient(entry, `clients[${i}]`, variables, ids, seen))
  const trustedIdps = (file.trusted_idps ?? []).map((entry, i) => ({
    issuer: entry.issuer,
    jwksUri: fetchableUrl(entry.jwks_uri, `trusted_idps[${i}].jwks_uri`),
    claims: entry.claims ?? {}
  }))
  return { routes, clients, trustedIdps }
}

const lowerEmails = (list: string[] | undefined): string[] => (list ?? []).map(e => e.toLowerCase())
const lowerDomains = (list: string[] | undefined): string[] => (list ?? []).map(d => d.toLowerCase().replace(/^@/, ''))

function checkPattern (pattern: string, where: string, seen: Set<string>): void {
  if (!pattern.startsWith('/')) throw new ConfigError(where, `"${pattern}" must start with "/"`)
  if (pattern.length > 1 && pattern.endsWith('/')) throw new ConfigError(where, `"${pattern}" must not end with "/"`)
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(pattern)) {
    throw new ConfigError(where, `"${pattern}" may only hold path segments of letters, digits and . _ ~ -`)
  }
  if (pattern.startsWith('/.well-known') || pattern.startsWith('/oauth') || ['/healthz', '/readyz', '/metrics', '/authorize', '/token', '/register'].includes(pattern)) {
    throw new ConfigError(where, `"${pattern}" collides with a gateway endpoint`)
  }
  if (seen.has(pattern)) throw new ConfigError(where, `"${pattern}" is a duplicate`)
  seen.add(pattern)
}

function checkTarget (targetUrl: string, where: string): void {
  const target = parseConfigUrl(targetUrl, where)
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new ConfigError(where, `"${targetUrl}" must be an http or https URL`)
  }
  if (target.username !== '' || target.password !== '') {
    throw new ConfigError(where, 'must not carry credentials (use upstream_auth: header)')
  }
}

/** Keys the gateway fetches itself: https, or http on this host only (a sidecar, a test). */
function fetchableUrl (value: string, where: string): string {
  const url = parseConfigUrl(value, where)
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ConfigError(where, `"${value}" must be an https URL (http only on a loopback host)`)
  }
  return value
}

function buildUpstream (entry: RouteEntry, where: string, variables: Record<string, string | undefined>): RouteUpstream {
  const auth = entry.upstream_auth ?? 'none'
  const headerName = entry.upstream_header
  const headerEnv = entry.upstream_header_env
  if (auth === 'none' || auth === 'identity') {
    if (headerName !== undefined || headerEnv !== undefined) {
      throw new ConfigError(`${where}.upstream_header`, 'applies only with upstream_auth: header or provider_token')
    }
    return { auth }
  }
  const name = headerName ?? 'Authorization'
  if (!HEADER_NAME.test(name) || FORBIDDEN_UPSTREAM_HEADERS.has(name.toLowerCase())) {
    throw new ConfigError(`${where}.upstream_header`, `"${name}" is not a header the gateway may set`)
  }
  if (auth === 'provider_token') {
    if (headerEnv !== undefined) throw new ConfigError(`${where}.upstream_header_env`, 'applies only with upstream_auth: header')
    return { auth, headerName: name.toLowerCase() }
  }
  if (headerEnv === undefined) throw new ConfigError(`${where}.upstream_header_env`, 'is required with upstream_auth: header')
  const value = variables[headerEnv] ?? ''
  if (value === '') throw new ConfigError(`${where}.upstream_header_env`, `names ${headerEnv}, which is not set`)
  return { auth, headerName: name.toLowerCase(), value }
}

function buildRoute (entry: RouteEntry, where: string, env: Env, variables: Record<string, string | undefined>, seen: Set<string>): RouteConfig {
  const { pattern, target_url: targetUrl } = entry
  checkPattern(pattern, `${where}.pattern`, seen)
  checkTarget(targetUrl, `${where}.target_url`)
  return {
    pattern,
    targetUrl,
    resourceUrl: env.BASE_URL + pattern,
    metadataUrl: `${env.BASE_URL}/.well-known/oauth-protected-resource${pattern}`,
    allowedEmails: lowerEmails(entry.allowed_emails),
    allowedDomains: lowerDomains(entry.allowed_domains),
    allowedClients: entry.allowed_clients ?? [],
    upstream: buildUpstream(entry, where, variables),
    scopes: entry.scopes ?? DEFAULT_ROUTE_SCOPES,
    toolPolicy: entry.tools === undefined ? undefined : buildToolPolicy(entry.tools),
    auditArguments: entry.audit_arguments ?? false
  }
}

function buildToolPolicy (tools: ToolsEntry): ToolPolicy {
  return new ToolPolicy({
    allow: tools.allow,
    deny: tools.deny ?? [],
    grants: (tools.grants ?? []).map(grant => ({
      emails: lowerEmails(grant.emails),
      domains: lowerDomains(grant.domains),
      clients: grant.clients ?? [],
      allow: grant.allow
    })),
    requiredScopes: tools.required_scopes ?? {}
  })
}

/** Machine grants: the client proves itself, so it cannot be public. */
const CONFIDENTIAL_GRANTS: readonly ClientGrantType[] = ['client_credentials', JWT_BEARER_GRANT]

function buildClient (entry: ClientEntry, where: string, variables: Record<string, string | undefined>, ids: Set<string>, patterns: Set<string>): ClientConfig {
  const clientId = entry.client_id
  if (ids.has(clientId)) throw new ConfigError(`${where}.client_id`, `"${clientId}" is a duplicate`)
  ids.add(clientId)
  const grantTypes = entry.grant_types ?? ['authorization_code', 'refresh_token']
  const redirectUris = entry.redirect_uris ?? []
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0) {
    throw new ConfigError(`${where}.redirect_uris`, 'must list at least one URI')
  }
  let clientSecret: string | undefined
  if (entry.client_secret_env !== undefined) {
    clientSecret = variables[entry.client_secret_env]
    if (clientSecret === undefined || clientSecret === '') throw new ConfigError(`${where}.client_secret_env`, `names ${entry.client_secret_env}, which is not set`)
  }
  const hasKeys = entry.jwks !== undefined || entry.jwks_uri !== undefined
  const authMethod = entry.token_endpoint_auth_method ?? (clientSecret !== undefined ? 'client_secret_basic' : hasKeys ? 'private_key_jwt' : 'none')
  if (authMethod === 'private_key_jwt') {
    if (entry.jwks !== undefined && entry.jwks_uri !== undefined) throw new ConfigError(`${where}.jwks_uri`, 'and jwks are exclusive: give the keys one way')
    if (!hasKeys) throw new ConfigError(`${where}.jwks`, 'or jwks_uri is required with private_key_jwt')
  } else if (hasKeys) {
    throw new ConfigError(`${where}.jwks`, 'applies only with token_endpoint_auth_method: private_key_jwt')
  }
  if ((authMethod === 'client_secret_basic' || authMethod === 'client_secret_post') && clientSecret === undefined) {
    throw new ConfigError(`${where}.client_secret_env`, `is required with ${authMethod}`)
  }
  const machine = grantTypes.find(g => CONFIDENTIAL_GRANTS.includes(g))
  if (machine !== undefined && authMethod === 'none') {
    throw new ConfigError(`${where}.token_endpoint_auth_method`, `must authenticate the client (not none) with ${machine}`)
  }
  const routes = entry.routes ?? []
  routes.forEach((pattern, i) => {
    if (!patterns.has(pattern)) throw new ConfigError(`${where}.routes[${i}]`, `"${pattern}" is not the pattern of a route in proxies`)
  })
  if (grantTypes.includes('client_credentials') && routes.length === 0) {
    throw new ConfigError(`${where}.routes`, 'must name the routes a client_credentials client may get tokens for')
  }
  return {
    clientId,
    clientName: entry.client_name ?? clientId,
    redirectUris,
    grantTypes,
    authMethod,
    clientSecret,
    jwks: entry.jwks,
    jwksUri: entry.jwks_uri === undefined ? undefined : fetchableUrl(entry.jwks_uri, `${where}.jwks_uri`),
    routes,
    scopes: entry.scopes
  }
}
