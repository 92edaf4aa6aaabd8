import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { commaList, parseEnv, type Env } from '../config/env.js'
import { buildRoutes, readConfigFile, type ClientConfig, type RouteConfig, type TrustedIdp } from '../config/config-file.js'
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

export interface ConfigPluginOptions {
  /** Raw variables (process.env, or a test's object). */
  env: Record<string, string | undefined>
  /** Parsed config.yaml; when absent it is read from CONFIG_FILE. */
  configFile?: unknown
}

declare module 'fastify' {
  interface FastifyInstance {
    config: GatewayConfig
  }
}

/** Everything the gateway is told, validated once at start-up. */
export function loadGatewayConfig (opts: ConfigPluginOptions): GatewayConfig {
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

/** Decorates the configuration that buildApp validated before the app existed. */
async function configPlugin (fastify: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  fastify.decorate('config', opts.config)
}

export default fp(configPlugin, { name: 'config', fastify: '5.x' })
