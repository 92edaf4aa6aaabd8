import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'
import { ConfigError } from './config-error.js'
import { parseEncryptionKeys, parseSigningKeys } from '../keys/key-parsing.js'
import { tracingSettings } from '../tracing/otel-settings.js'

const CommaList = (description: string, fallback = '') =>
  Type.String({ default: fallback, description })

/** Every environment variable the gateway reads; README's configuration table mirrors this. */
export const EnvSchema = Type.Object({
  BASE_URL: Type.String({ default: 'http://localhost:8080', description: 'Public origin and issuer' }),
  HOST: Type.String({ default: '0.0.0.0' }),
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Serve /metrics only on this port (unset: on PORT)' })),
  LOG_LEVEL: Type.Union([
    Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
    Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')
  ], { default: 'info' }),
  TRUST_PROXY: Type.String({ default: 'false', description: 'true, false, or a hop count' }),
  ALLOWED_ORIGINS: CommaList('Allowed browser origins', '*'),
  CONFIG_FILE: Type.String({ default: 'config.yaml' }),
  REDIS_URL: Type.Optional(Type.String()),
  REDIS_ADDR: Type.Optional(Type.String()),
  REDIS_PASSWORD: Type.Optional(Type.String()),
  REDIS_TLS: Type.Boolean({ default: false }),
  REDIS_SENTINELS: Type.Optional(Type.String({ description: 'Sentinel mode: host:port,host:port' })),
  REDIS_SENTINEL_MASTER: Type.Optional(Type.String({ description: 'The master group name the sentinels watch' })),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String()),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ description: 'Cluster mode: host:port,host:port (any subset of the nodes)' })),
  REDIS_WAIT_REPLICAS: Type.Integer({ default: 1, minimum: 0, description: 'Replicas that must acknowledge a grant-bearing write (Sentinel, Cluster; 0: do not wait)' }),
  REDIS_WAIT_TIMEOUT_MS: Type.Integer({ default: 500, minimum: 1, maximum: 10000 }),
  JWT_SIGNING_KEY: Type.Optional(Type.String()),
  ENCRYPTION_KEY: Type.Optional(Type.String()),
  KEYS_FILE: Type.String({ default: '.mcp-gateway/keys.json' }),
  ACCESS_TOKEN_TTL: Type.Integer({ default: 3600, minimum: 60, maximum: 86400 }),
  OPERATOR_TOKEN_MAX_TTL: Type.Integer({ default: 86400, minimum: 60, maximum: 2592000, description: 'Longest lifetime, in seconds, of a token from `npm run token`' }),
  REVOCATION_RESYNC_SECONDS: Type.Integer({ default: 30, minimum: 1, maximum: 3600, description: 'How often each replica rereads the revocations from Redis, in case a pub/sub message was lost' }),
  REFRESH_TOKEN_TTL: Type.Integer({ default: 2592000, minimum: 300 }),
  REFRESH_TOKEN_MAX_LIFETIME: Type.Integer({ default: 7776000, minimum: 300, description: 'Seconds a refresh token family lives at most from its login, however often it rotates' }),
  REFRESH_GRACE_MS: Type.Integer({ default: 10000, minimum: 0, maximum: 60000, description: 'How long a just-rotated refresh token still gets the same new pair' }),
  LOGIN_SESSION_TTL: Type.Integer({ default: 43200, minimum: 0, description: 'Seconds a browser stays logged in to the gateway (0: log in every time)' }),
  UPSTREAM_TIMEOUT_MS: Type.Integer({ default: 60000, minimum: 100 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ default: 30000, minimum: 100, description: 'A client must send a whole request (headers and body) within this' }),
  HEADERS_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 100, description: 'A client must send a request\'s headers within this' }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ default: 72000, minimum: 100, description: 'How long an idle kept-alive connection stays open; above the load balancer\'s idle timeout' }),
  CONNECTION_TIMEOUT_MS: Type.Optional(Type.Integer({ minimum: 100, description: 'A connection with no traffic for this long is closed, except while it carries an event stream' })),
  OAUTH_PROVIDER: Type.Union([Type.Literal('google'), Type.Literal('oidc'), Type.Literal('github')], { default: 'google' }),
  OAUTH_GOOGLE_CLIENT_ID: Type.String({ default: '' }),
  OAUTH_GOOGLE_CLIENT_SECRET: Type.String({ default: '' }),
  OAUTH_GOOGLE_REDIRECT_URI: Type.String({ default: '' }),
  OAUTH_GOOGLE_SCOPES: CommaList('Scopes asked of Google', 'openid,profile,email'),
  OAUTH_OIDC_ISSUER: Type.String({ default: '' }),
  OAUTH_OIDC_CLIENT_ID: Type.String({ default: '' }),
  OAUTH_OIDC_CLIENT_SECRET: Type.String({ default: '' }),
  OAUTH_OIDC_SCOPES: CommaList('Scopes asked of the OIDC provider', 'openid,profile,email'),
  OAUTH_GITHUB_CLIENT_ID: Type.String({ default: '' }),
  OAUTH_GITHUB_CLIENT_SECRET: Type.String({ default: '' }),
  ALLOWED_EMAILS: CommaList('Emails allowed on every route'),
  ALLOWED_EMAIL_DOMAINS: CommaList('Email domains allowed on every route'),
  CIMD_ALLOW_LOOPBACK: Type.Boolean({ default: false }),
  REGISTRATIONS_PER_IP_PER_DAY: Type.Integer({ default: 100, minimum: 1, description: 'Dynamic client registrations one address may make in 24 hours' }),
  PENDING_AUTHORIZATIONS_PER_IP: Type.Integer({ default: 300, minimum: 1, description: 'Consent pages one address may open in 10 minutes' }),
  MEMORY_STORE_MAX_LONG_LIVED: Type.Integer({ default: 100000, minimum: 1, description: 'Memory store: sessions, refresh families, approvals, clients' }),
  OTEL_SDK_DISABLED: Type.Boolean({ default: false, description: 'true turns tracing off whatever else is set' }),
  OTEL_TRACES_EXPORTER: Type.Optional(Type.Union([Type.Literal('otlp'), Type.Literal('none')], { description: 'otlp: trace to the default endpoint; none: no tracing' })),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ description: 'OTLP/HTTP base URL; setting it turns tracing on' })),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(Type.String({ description: 'OTLP/HTTP URL of the traces, whole' })),
  OTEL_SERVICE_NAME: Type.String({ default: 'mcp-gateway' }),
  OTEL_TRACES_SAMPLER: Type.Union([
    Type.Literal('always_on'), Type.Literal('always_off'), Type.Literal('traceidratio'),
    Type.Literal('parentbased_always_on'), Type.Literal('parentbased_always_off'), Type.Literal('parentbased_traceidratio')
  ], { default: 'parentbased_always_on' }),
  OTEL_TRACES_SAMPLER_ARG: Type.Optional(Type.String({ description: 'The ratio of the traceidratio samplers, 0 to 1' })),
  MEMORY_STORE_MAX_SHORT_LIVED: Type.Integer({ default: 50000, minimum: 2, description: 'Memory store: codes, consent transactions, login states, counters' })
})
export type Env = Static<typeof EnvSchema>

/** Validates raw variables (process.env or a test's object) with defaults applied. */
export function parseEnv (data: Record<string, string | undefined>): Env {
  const defined: Record<string, string> = {}
  for (const [k, v] of Object.entries(data)) {
    // An empty variable means "unset", as in most deployment tools.
    if (v !== undefined && v !== '' && k in EnvSchema.properties) defined[k] = v
  }
  let env: Env
  try {
    env = envSchema<Env>({ schema: structuredClone(EnvSchema) as object, data: defined, env: false })
  } catch (err) {
    const first = (err as { errors?: Array<{ instancePath: string, message?: string, params?: { allowedValues?: unknown[] } }> }).errors?.[0]
    if (first === undefined) throw err
    const name = first.instancePath.replace(/^\//, '')
    const allowed = first.params?.allowedValues !== undefined ? ` (${first.params.allowedValues.join(', ')})` : ''
    throw new ConfigError(name, `${first.message ?? 'is invalid'}${allowed}`)
  }
  checkBaseUrl(env.BASE_URL)
  if (env.REDIS_URL !== undefined && !/^rediss?:\/\//.test(env.REDIS_URL)) {
    throw new ConfigError('REDIS_URL', 'must start with redis:// or rediss://')
  }
  if (env.REDIS_ADDR !== undefined && !/^[^\s:]+:\d+$/.test(env.REDIS_ADDR)) {
    throw new ConfigError('REDIS_ADDR', 'must be host:port')
  }
  checkRedisMode(env)
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT === env.PORT) {
    throw new ConfigError('METRICS_PORT', 'must differ from PORT (leave it unset to serve /metrics on PORT)')
  }
  if (!/^(true|false|\d+)$/.test(env.TRUST_PROXY)) {
    throw new ConfigError('TRUST_PROXY', 'must be true, false or a number of hops')
  }
  if (env.HEADERS_TIMEOUT_MS > env.REQUEST_TIMEOUT_MS) {
    throw new ConfigError('HEADERS_TIMEOUT_MS', 'must not exceed REQUEST_TIMEOUT_MS (the headers are part of the request)')
  }
  if (env.CONNECTION_TIMEOUT_MS !== undefined && env.CONNECTION_TIMEOUT_MS <= env.UPSTREAM_TIMEOUT_MS) {
    throw new ConfigError('CONNECTION_TIMEOUT_MS', 'must exceed UPSTREAM_TIMEOUT_MS (a connection is quiet while its request waits for the upstream)')
  }
  // Parsed again where used; checked here so a bad key stops start-up before anything runs.
  if (env.JWT_SIGNING_KEY !== undefined) parseSigningKeys(env.JWT_SIGNING_KEY)
  if (env.ENCRYPTION_KEY !== undefined) parseEncryptionKeys(env.ENCRYPTION_KEY)
  tracingSettings(env)
  return env
}

/** One Redis mode at a time, each with what it needs; a wrong combination names the variables. */
function checkRedisMode (env: Env): void {
  const modes = [
    env.REDIS_URL !== undefined || env.REDIS_ADDR !== undefined ? 'REDIS_URL/REDIS_ADDR' : undefined,
    env.REDIS_SENTINELS !== undefined ? 'REDIS_SENTINELS' : undefined,
    env.REDIS_CLUSTER_NODES !== undefined ? 'REDIS_CLUSTER_NODES' : undefined
  ].filter(m => m !== undefined)
  if (modes.length > 1) throw new ConfigError(modes[1], `cannot be combined with ${modes[0]}: set one Redis mode`)
  for (const name of ['REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const) {
    const value = env[name]
    if (value !== undefined && !commaList(value).every(node => /^[^\s:,]+:\d+$/.test(node))) {
      throw new ConfigError(name, 'must be host:port,host:port')
    }
  }
  if (env.REDIS_SENTINELS !== undefined && env.REDIS_SENTINEL_MASTER === undefined) {
    throw new ConfigError('REDIS_SENTINEL_MASTER', 'is required with REDIS_SENTINELS (the master group name)')
  }
  for (const name of ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD'] as const) {
    if (env[name] !== undefined && env.REDIS_SENTINELS === undefined) throw new ConfigError(name, 'needs REDIS_SENTINELS')
  }
}

/** host:port pairs of a REDIS_SENTINELS or REDIS_CLUSTER_NODES value (checked by parseEnv). */
export function hostPorts (value: string): Array<{ host: string, port: number }> {
  return commaList(value).map(node => {
    const i = node.lastIndexOf(':')
    return { host: node.slice(0, i), port: Number(node.slice(i + 1)) }
  })
}

function checkBaseUrl (value: string): void {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError('BASE_URL', `"${value}" is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('BASE_URL', 'must be an http(s) URL')
  }
  if (value.endsWith('/')) throw new ConfigError('BASE_URL', 'must not end with a slash')
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new ConfigError('BASE_URL', 'must be an origin only (no path, query or fragment)')
  }
}

/**
 * CONNECTION_TIMEOUT_MS, by default 2 minutes and at least twice UPSTREAM_TIMEOUT_MS: a request
 * waiting for its upstream is quiet, and raising the upstream timeout alone must not break it.
 */
export function connectionTimeoutMs (env: Env): number {
  return env.CONNECTION_TIMEOUT_MS ?? Math.max(120_000, 2 * env.UPSTREAM_TIMEOUT_MS)
}

/** Splits a comma-separated variable, dropping blanks. */
export function commaList (value: string): string[] {
  return value.split(',').map(s => s.trim()).filter(s => s !== '')
}
