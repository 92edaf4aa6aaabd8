/**
 * The shape of config.yaml as one compiled schema: types, required keys and unknown keys are
 * checked here, and the first failure is reported naming its entry (`proxies[1].target_url`).
 * Rules that relate several fields stay in `config-file.ts`.
 */
import { Type, type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { ConfigError } from './config-error.js'

const Text = Type.String({ minLength: 1 })
const StringList = Type.Array(Text)
const strict = { additionalProperties: false }

export const UPSTREAM_AUTH = ['none', 'identity', 'provider_token', 'header'] as const
export const CLIENT_GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer'] as const
export const CLIENT_AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const

export const ToolGrantSchema = Type.Object({
  emails: Type.Optional(StringList),
  domains: Type.Optional(StringList),
  /** Pre-registered clients (machine callers have no email). */
  clients: Type.Optional(StringList),
  allow: StringList
}, strict)

export const ToolsSchema = Type.Object({
  allow: Type.Optional(StringList),
  deny: Type.Optional(StringList),
  grants: Type.Optional(Type.Array(ToolGrantSchema)),
  required_scopes: Type.Optional(Type.Record(Type.String(), StringList))
}, strict)

export const RouteEntrySchema = Type.Object({
  pattern: Text,
  target_url: Text,
  allowed_emails: Type.Optional(StringList),
  allowed_domains: Type.Optional(StringList),
  allowed_clients: Type.Optional(StringList),
  upstream_auth: Type.Optional(Type.Enum(UPSTREAM_AUTH)),
  upstream_header: Type.Optional(Text),
  upstream_header_env: Type.Optional(Text),
  scopes: Type.Optional(StringList),
  tools: Type.Optional(ToolsSchema),
  audit_arguments: Type.Optional(Type.Boolean())
}, strict)

export const JwkSetSchema = Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown()), { minItems: 1 }) })

export const ClientEntrySchema = Type.Object({
  client_id: Text,
  client_name: Type.Optional(Text),
  redirect_uris: Type.Optional(StringList),
  grant_types: Type.Optional(Type.Array(Type.Enum(CLIENT_GRANT_TYPES), { minItems: 1 })),
  token_endpoint_auth_method: Type.Optional(Type.Enum(CLIENT_AUTH_METHODS)),
  /** The variable holding the secret; only its hash is kept. */
  client_secret_env: Type.Optional(Text),
  jwks: Type.Optional(JwkSetSchema),
  jwks_uri: Type.Optional(Text),
  /** Route patterns a machine client may get tokens for. */
  routes: Type.Optional(StringList),
  /** Scopes it may get there; absent: each route's own. */
  scopes: Type.Optional(StringList)
}, strict)

export const TrustedIdpSchema = Type.Object({
  issuer: Text,
  jwks_uri: Text,
  /** Claims an assertion must carry, each with the values accepted. */
  claims: Type.Optional(Type.Record(Type.String(), StringList))
}, strict)

export const ConfigFileSchema = Type.Object({
  proxies: Type.Array(RouteEntrySchema),
  clients: Type.Optional(Type.Array(ClientEntrySchema)),
  trusted_idps: Type.Optional(Type.Array(TrustedIdpSchema))
}, strict)

export type ConfigFile = Static<typeof ConfigFileSchema>
export type RouteEntry = Static<typeof RouteEntrySchema>
export type ClientEntry = Static<typeof ClientEntrySchema>
export type ToolsEntry = Static<typeof ToolsSchema>

const checker = Compile(ConfigFileSchema)

interface SchemaError { keyword: string, instancePath: string, params: Record<string, unknown>, message: string }

/** `/proxies/0/target_url` → `proxies[0].target_url`; top-level keys read `config.yaml proxies`. */
function settingName (path: string[]): string {
  if (path.length <= 1) return `config.yaml${path.length === 1 ? ` ${path[0]}` : ''}`
  return path.reduce((name, part) => /^\d+$/.test(part) ? `${name}[${part}]` : name === '' ? part : `${name}.${part}`, '')
}

function keysOf (schema: TSchema | undefined): string {
  const properties = (schema as { properties?: Record<string, unknown> } | undefined)?.properties
  return properties === undefined ? '' : ` (${Object.keys(properties).join(', ')})`
}

/** The schema node an instance path leads to, to list the keys it knows. */
function schemaAt (path: string[]): TSchema | undefined {
  let node: unknown = ConfigFileSchema
  for (const part of path) {
    const n = node as { properties?: Record<string, unknown>, items?: unknown, anyOf?: unknown }
    node = /^\d+$/.test(part) ? n.items : n.properties?.[part]
  }
  return node as TSchema | undefined
}

const TYPE_PROBLEMS: Record<string, string> = {
  array: 'must be a list',
  object: 'must be a mapping',
  string: 'must be a non-empty string',
  boolean: 'must be true or false'
}

/** One sentence for the first (deepest) problem the schema finds. */
function describe (error: SchemaError, value: unknown): ConfigError {
  const path = error.instancePath.split('/').slice(1).map(p => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  switch (error.keyword) {
    case 'additionalProperties': {
      const [key] = error.params.additionalProperties as string[]
      return new ConfigError(settingName([...path, key]), `is not a known setting${keysOf(schemaAt(path))}`)
    }
    case 'required': {
      const [key] = error.params.requiredProperties as string[]
      return new ConfigError(settingName([...path, key]), 'is required')
    }
    case 'enum':
      return new ConfigError(settingName(path), `${JSON.stringify(value)} must be one of ${(error.params.allowedValues as string[]).join(', ')}`)
    case 'type':
      return new ConfigError(settingName(path), TYPE_PROBLEMS[error.params.type as string] ?? error.message)
    case 'minLength':
      return new ConfigError(settingName(path), 'must be a non-empty string')
    case 'minItems':
      return new ConfigError(settingName(path), 'must not be empty')
    default:
      return new ConfigError(settingName(path), error.message)
  }
}

function valueAt (root: unknown, pointer: string): unknown {
  return pointer.split('/').slice(1).reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], root)
}

/** The file, typed, or a ConfigError naming the first entry that is wrong. */
export function checkConfigFile (raw: unknown): ConfigFile {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError('config.yaml', 'must be a mapping with a `proxies` list')
  }
  if (checker.Check(raw)) return raw
  // An unknown key first: a misspelt `targetUrl` is the cause of the missing `target_url`. The
  // schema reports a failed `false` branch before the key that caused it; skip to the key.
  const errors = [...checker.Errors(raw)].filter(e => e.keyword !== 'boolean') as SchemaError[]
  const first = errors.find(e => e.keyword === 'additionalProperties') ?? errors[0]
  return (() => { throw describe(first, valueAt(raw, first.instancePath)) })()
}
