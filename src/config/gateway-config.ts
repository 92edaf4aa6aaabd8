import { commaList, parseEnv, type Env } from './env.js'
import { buildRoutes, readConfigFile, type ClientConfig, type RouteConfig, type TrustedIdp } from './config-file.js'
import type { AllowList } from '../oauth/allow-list.js'

export interface GatewayConfig {
  env: Env
  routes: RouteConfig[]
  clients: ClientConfig[]
  /** Enterprise IdPs whose ID-JAGs the token endpoint accepts. */
  trustedIdps: TrustedIdp[]
  allowedOrigins: string[] | '*'
  /** ALLOWED_EMAILS and ALLOWED_EMAIL_DOMAINS, lower-cased: checked at every login and refresh. */
  globalAllow: AllowList
  /** Lookup by pattern (the proxied path). */
  routeByPattern: Map<string, RouteConfig>
}

export interface GatewayConfigSource {
  /** Raw variables (process.env, or a test's object). */
  env: Record<string, string | undefined>
  /** Parsed config.yaml; when absent it is read from CONFIG_FILE. */
  configFile?: unknown
}

/** Everything the gateway is told, validated once at start-up (the app and the CLI alike). */
export function loadGatewayConfig (opts: GatewayConfigSource): GatewayConfig {
  const env = parseEnv(opts.env)
  const raw = opts.configFile !== undefined ? opts.configFile : readConfigFile(env.CONFIG_FILE)
  const { routes, clients, trustedIdps } = buildRoutes(raw, env, opts.env)
  const origins = commaList(env.ALLOWED_ORIGINS)
  return {
    env,
    routes,
    clients,
    trustedIdps,
    allowedOrigins: origins.includes('*') ? '*' : origins,
    globalAllow: {
      emails: commaList(env.ALLOWED_EMAILS).map(e => e.toLowerCase()),
      domains: commaList(env.ALLOWED_EMAIL_DOMAINS).map(d => d.toLowerCase().replace(/^@/, ''))
    },
    routeByPattern: new Map(routes.map(r => [r.pattern, r]))
  }
}
