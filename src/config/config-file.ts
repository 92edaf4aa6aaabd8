import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { Type, type Static } from 'typebox'
import { ConfigError } from './config-error.js'
import type { Env } from './env.js'
import { ToolPolicy } from '../policy/tool-policy.js'

const StringList = Type.Array(Type.String({ minLength: 1 }))

export const RouteEntrySchema = Type.Object({
  pattern: Type.String(),
  target_url: Type.String(),
  allowed_emails: Type.Optional(StringList),
  allowed_domains: Type.Optional(StringList),
  upstream_auth: Type.Optional(Type.Union([
    Type.Literal('none'), Type.Literal('identity'), Type.Literal('provider_token'), Type.Literal('header')
  ])),
  upstream_header: Type.Optional(Type.String()),
  upstream_header_env: Type.Optional(Type.String()),
  scopes: Type.Optional(StringList),
  tools: Type.Optional(Type.Object({
    allow: Type.Optional(StringList),
    deny: Type.Optional(StringList),
    grants: Type.Optional(Type.Array(Type.Object({
      emails: Type.Optional(StringList),
      domains: Type.Optional(StringList),
      allow: StringList
    }))),
    required_scopes: Type.Optional(Type.Record(Type.String(), StringList))
  })),
  audit_arguments: Type.Optional(Type.Boolean())
})

export const ClientEntrySchema = Type.Object({
  client_id: Type.String({ minLength: 1 }),
  client_secret_env: Type.Optional(Type.String()),
  redirect_uris: StringList,
  client_name: Type.Optional(Type.String())
})

export const ConfigFileSchema = Type.Object({
  proxies: Type.Array(RouteEntrySchema),
  clients: Type.Optional(Type.Array(ClientEntrySchema))
})
export type ConfigFile = Static<typeof ConfigFileSchema>

export type UpstreamAuth = 'none' | 'identity' | 'provider_token' | 'header'

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
  upstreamAuth: UpstreamAuth
  /** upstream_auth header: the static header sent upstream; provider_token: the header's name (value unused). */
  upstreamHeader?: { name: string, value: string }
  scopes: string[]
  /** Per-tool rules; absent: every tool the upstream offers. */
  toolPolicy?: ToolPolicy
  /** Whether audit records carry tool arguments. */
  auditArguments: boolean
}

export interface ClientConfig {
  clientId: string
  clientSecret?: string
  redirectUris: string[]
  clientName: string
}

export interface GatewayRoutes {
  routes: RouteConfig[]
  clients: ClientConfig[]
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
 * Turns the parsed config.yaml into routes and clients, failing on the first entry that is
 * wrong with a message naming it (e.g. `proxies[1].pattern`).
 */
export function buildRoutes (raw: unknown, env: Env, variables: Record<string, string | undefined>): GatewayRoutes {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError('config.yaml', 'must be a mapping with a `proxies` list')
  }
  const file = raw as Record<string, unknown>
  for (const key of Object.keys(file)) {
    if (key !== 'proxies' && key !== 'clients') throw new ConfigError(`config.yaml ${key}`, 'is not a known setting (proxies, clients)')
  }
  if (!Array.isArray(file.proxies)) throw new ConfigError('config.yaml proxies', 'must be a list')
  const seen = new Set<string>()
  const routes = file.proxies.map((entry, i) => buildRoute(entry, `proxies[${i}]`, env, variables, seen))
  const clientEntries = file.clients ?? []
  if (!Array.isArray(clientEntries)) throw new ConfigError('config.yaml clients', 'must be a list')
  const ids = new Set<string>()
  const clients = clientEntries.map((entry, i) => buildClient(entry, `clients[${i}]`, variables, ids))
  return { routes, clients }
}

function expectObject (entry: unknown, where: string, known: readonly string[]): Record<string, unknown> {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new ConfigError(where, 'must be a mapping')
  }
  for (const key of Object.keys(entry)) {
    if (!known.includes(key)) throw new ConfigError(`${where}.${key}`, `is not a known setting (${known.join(', ')})`)
  }
  return entry as Record<string, unknown>
}

function stringField (obj: Record<string, unknown>, key: string, where: string, required: true): string
function stringField (obj: Record<string, unknown>, key: string, where: string, required: false): string | undefined
function stringField (obj: Record<string, unknown>, key: string, where: string, required: boolean): string | undefined {
  const value = obj[key]
  if (value === undefined || value === null) {
    if (required) throw new ConfigError(`${where}.${key}`, 'is required')
    return undefined
  }
  if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}.${key}`, 'must be a non-empty string')
  return value
}

function listField (obj: Record<string, unknown>, key: string, where: string): string[] | undefined {
  const value = obj[key]
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value) || value.some(v => typeof v !== 'string' || v === '')) {
    throw new ConfigError(`${where}.${key}`, 'must be a list of non-empty strings')
  }
  return value as string[]
}

function buildRoute (entry: unknown, where: string, env: Env, variables: Record<string, string | undefined>, seen: Set<string>): RouteConfig {
  const obj = expectObject(entry, where, Object.keys(RouteEntrySchema.properties))
  const pattern = stringField(obj, 'pattern', where, true)
  if (!pattern.startsWith('/')) throw new ConfigError(`${where}.pattern`, `"${pattern}" must start with "/"`)
  if (pattern.length > 1 && pattern.endsWith('/')) throw new ConfigError(`${where}.pattern`, `"${pattern}" must not end with "/"`)
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(pattern)) {
    throw new ConfigError(`${where}.pattern`, `"${pattern}" may only hold path segments of letters, digits and . _ ~ -`)
  }
  if (pattern.startsWith('/.well-known') || pattern.startsWith('/oauth') || ['/healthz', '/readyz', '/metrics', '/authorize', '/token', '/register'].includes(pattern)) {
    throw new ConfigError(`${where}.pattern`, `"${pattern}" collides with a gateway endpoint`)
  }
  if (seen.has(pattern)) throw new ConfigError(`${where}.pattern`, `"${pattern}" is a duplicate`)
  seen.add(pattern)

  const targetUrl = stringField(obj, 'target_url', where, true)
  let target: URL
  try {
    target = new URL(targetUrl)
  } catch {
    throw new ConfigError(`${where}.target_url`, `"${targetUrl}" is not a URL`)
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new ConfigError(`${where}.target_url`, `"${targetUrl}" must be an http or https URL`)
  }
  if (target.username !== '' || target.password !== '') {
    throw new ConfigError(`${where}.target_url`, 'must not carry credentials (use upstream_auth: header)')
  }

  const upstreamAuth = (obj.upstream_auth ?? 'none') as UpstreamAuth
  if (!['none', 'identity', 'provider_token', 'header'].includes(upstreamAuth)) {
    throw new ConfigError(`${where}.upstream_auth`, `"${String(upstreamAuth)}" must be one of none, identity, provider_token, header`)
  }
  const headerName = stringField(obj, 'upstream_header', where, false)
  const headerEnv = stringField(obj, 'upstream_header_env', where, false)
  let upstreamHeader: RouteConfig['upstreamHeader']
  if (upstreamAuth === 'header' || upstreamAuth === 'provider_token') {
    const name = headerName ?? 'Authorization'
    if (!HEADER_NAME.test(name) || FORBIDDEN_UPSTREAM_HEADERS.has(name.toLowerCase())) {
      throw new ConfigError(`${where}.upstream_header`, `"${name}" is not a header the gateway may set`)
    }
    // provider_token: the user's token, as "Bearer <token>" in Authorization or bare in another header.
    let value = ''
    if (upstreamAuth === 'header') {
      if (headerEnv === undefined) throw new ConfigError(`${where}.upstream_header_env`, 'is required with upstream_auth: header')
      value = variables[headerEnv] ?? ''
      if (value === '') throw new ConfigError(`${where}.upstream_header_env`, `names ${headerEnv}, which is not set`)
    } else if (headerEnv !== undefined) {
      throw new ConfigError(`${where}.upstream_header_env`, 'applies only with upstream_auth: header')
    }
    upstreamHeader = { name: name.toLowerCase(), value }
  } else if (headerName !== undefined || headerEnv !== undefined) {
    throw new ConfigError(`${where}.upstream_header`, 'applies only with upstream_auth: header or provider_token')
  }

  const domains = listField(obj, 'allowed_domains', where) ?? []
  const audit = obj.audit_arguments ?? false
  if (typeof audit !== 'boolean') throw new ConfigError(`${where}.audit_arguments`, 'must be true or false')
  return {
    pattern,
    targetUrl,
    resourceUrl: env.BASE_URL + pattern,
    metadataUrl: `${env.BASE_URL}/.well-known/oauth-protected-resource${pattern}`,
    allowedEmails: (listField(obj, 'allowed_emails', where) ?? []).map(e => e.toLowerCase()),
    allowedDomains: domains.map(d => d.toLowerCase().replace(/^@/, '')),
    upstreamAuth,
    upstreamHeader,
    scopes: listField(obj, 'scopes', where) ?? DEFAULT_ROUTE_SCOPES,
    toolPolicy: obj.tools === undefined ? undefined : buildToolPolicy(obj.tools, `${where}.tools`),
    auditArguments: audit
  }
}

function buildToolPolicy (entry: unknown, where: string): ToolPolicy {
  const obj = expectObject(entry, where, ['allow', 'deny', 'grants', 'required_scopes'])
  const grants = obj.grants ?? []
  if (!Array.isArray(grants)) throw new ConfigError(`${where}.grants`, 'must be a list')
  const required = obj.required_scopes ?? {}
  if (required === null || typeof required !== 'object' || Array.isArray(required)) {
    throw new ConfigError(`${where}.required_scopes`, 'must map tool names to lists of scopes')
  }
  const requiredScopes: Record<string, string[]> = {}
  for (const tool of Object.keys(required)) {
    requiredScopes[tool] = listField(required as Record<string, unknown>, tool, `${where}.required_scopes`) ?? []
  }
  return new ToolPolicy({
    allow: listField(obj, 'allow', where),
    deny: listField(obj, 'deny', where) ?? [],
    grants: grants.map((grant, i) => {
      const g = expectObject(grant, `${where}.grants[${i}]`, ['emails', 'domains', 'allow'])
      const allow = listField(g, 'allow', `${where}.grants[${i}]`)
      if (allow === undefined) throw new ConfigError(`${where}.grants[${i}].allow`, 'is required')
      return {
        emails: (listField(g, 'emails', `${where}.grants[${i}]`) ?? []).map(e => e.toLowerCase()),
        domains: (listField(g, 'domains', `${where}.grants[${i}]`) ?? []).map(d => d.toLowerCase().replace(/^@/, '')),
        allow
      }
    }),
    requiredScopes
  })
}

function buildClient (entry: unknown, where: string, variables: Record<string, string | undefined>, ids: Set<string>): ClientConfig {
  const obj = expectObject(entry, where, Object.keys(ClientEntrySchema.properties))
  const clientId = stringField(obj, 'client_id', where, true)
  if (ids.has(clientId)) throw new ConfigError(`${where}.client_id`, `"${clientId}" is a duplicate`)
  ids.add(clientId)
  const redirectUris = listField(obj, 'redirect_uris', where)
  if (redirectUris === undefined || redirectUris.length === 0) throw new ConfigError(`${where}.redirect_uris`, 'must list at least one URI')
  const secretEnv = stringField(obj, 'client_secret_env', where, false)
  let clientSecret: string | undefined
  if (secretEnv !== undefined) {
    clientSecret = variables[secretEnv]
    if (clientSecret === undefined || clientSecret === '') throw new ConfigError(`${where}.client_secret_env`, `names ${secretEnv}, which is not set`)
  }
  return { clientId, clientSecret, redirectUris, clientName: stringField(obj, 'client_name', where, false) ?? clientId }
}
