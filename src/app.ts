import Fastify, { type FastifyInstance } from 'fastify'
import { destination } from 'pino'
import errorHandler from './plugins/error-handler.js'
import configPlugin from './plugins/config.js'
import { loadGatewayConfig, type GatewayConfigSource } from './config/gateway-config.js'
import { systemClock, type Clock } from './authorization/clock.js'
import storePlugin from './plugins/store.js'
import keysPlugin from './plugins/keys.js'
import tokensPlugin from './plugins/tokens.js'
import upstreamIdpPlugin from './plugins/upstream-idp.js'
import clientsPlugin from './plugins/clients.js'
import grantsPlugin from './plugins/grants.js'
import authorizationFlowPlugin from './plugins/authorization-flow.js'
import securityPlugin from './plugins/security.js'
import metricsPlugin from './plugins/metrics.js'
import tracingPlugin from './plugins/tracing.js'
import toolCallsPlugin from './plugins/tool-calls.js'
import providerTokensPlugin from './plugins/provider-tokens.js'
import healthRoutes from './routes/health.js'
import protectedResourceRoutes from './routes/protected-resource.js'
import oauthRoutes from './routes/oauth.js'
import proxyPlugin from './plugins/proxy.js'
import { OneLineRequestLog, requestId } from './request-log.js'
import { connectionTimeoutMs } from './config/env.js'
import { misspeltSettings } from './config/env-typos.js'

export interface AppOptions extends GatewayConfigSource {
  /** false silences the log (tests). */
  logger?: false
  /** Where log lines go (default stdout). */
  logStream?: { write: (line: string) => void }
  /** The services' time (default the system clock; tests advance their own). */
  clock?: Clock
}

const SECRET_FIELDS = ['access_token', 'refresh_token', 'id_token', 'code_verifier', 'client_secret', 'token']

/**
 * Paths pino must never print: credentials in headers and in parsed bodies, and in the tool
 * arguments an audit_arguments route logs (pino's `*` matches one level only).
 */
export const REDACT = [
  'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
  ...SECRET_FIELDS.flatMap(field => [`*.${field}`, `audit.arguments.${field}`]),
  'body.code', 'query.code'
]

const LOG_FLUSH_MS = 500
/** How often Node checks the headers and request timeouts (its default, 30 s, gives slow clients that much longer). */
const TIMEOUT_CHECK_MS = 1000

function trustProxy (value: string): boolean | ((address: string, hop: number) => boolean) {
  if (value === 'true') return true
  const hops = Number(value)
  return Number.isInteger(hops) && hops > 0 ? (_address, hop) => hop < hops : false
}

/**
 * Builds the gateway from options: config → tracing → store → keys → tokens → upstream IdP, clients,
 * grants, authorization flow → security → metrics → routes → one proxy per route. Throws
 * ConfigError before anything starts when the configuration is wrong.
 */
export async function buildApp (opts: AppOptions): Promise<FastifyInstance> {
  const config = loadGatewayConfig(opts)
  // Log lines are gathered into 4 KiB writes instead of one write(2) per request (which cost
  // the proxied path about 6% of its CPU); a timer bounds how long a quiet server holds a line,
  // and pino writes out what is left when the process exits.
  const logStream = opts.logger === undefined && opts.logStream === undefined ? destination({ dest: 1, sync: false, minLength: 4096 }) : undefined
  const app = Fastify({
    logger: opts.logger ?? {
      level: config.env.LOG_LEVEL,
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: {
        // Paths only: query strings can carry codes and states.
        req: (req: { id: string, method: string, url: string }) => ({ id: req.id, method: req.method, path: req.url.split('?')[0] })
      },
      stream: opts.logStream ?? logStream
    },
    logController: new OneLineRequestLog(),
    // genReqId reads X-Request-Id itself, so that a malformed one is never taken as is.
    requestIdHeader: false,
    genReqId: requestId,
    trustProxy: trustProxy(config.env.TRUST_PROXY),
    // Slow clients (a body or headers trickled byte by byte) cannot hold connections; the
    // proxy lifts the idle timeout for event streams, which may stay quiet for long.
    requestTimeout: config.env.REQUEST_TIMEOUT_MS,
    connectionTimeout: connectionTimeoutMs(config.env),
    keepAliveTimeout: config.env.KEEP_ALIVE_TIMEOUT_MS,
    http: {
      requestTimeout: config.env.REQUEST_TIMEOUT_MS,
      headersTimeout: config.env.HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, config.env.HEADERS_TIMEOUT_MS)
    },
    // The store plugin may wait up to 30 s for Redis at start-up.
    pluginTimeout: 45_000
  })

  if (logStream !== undefined) {
    const flusher = setInterval(() => logStream.flush(), LOG_FLUSH_MS)
    flusher.unref()
    app.addHook('onClose', async () => {
      clearInterval(flusher)
      logStream.flush()
    })
  }
  for (const warning of misspeltSettings(opts.env)) app.log.warn(warning)
  await app.register(errorHandler)
  await app.register(configPlugin, { config, clock: opts.clock ?? systemClock })
  await app.register(tracingPlugin)
  await app.register(storePlugin)
  await app.register(keysPlugin)
  await app.register(tokensPlugin)
  await app.register(upstreamIdpPlugin)
  await app.register(clientsPlugin)
  await app.register(authorizationFlowPlugin)
  await app.register(grantsPlugin)
  await app.register(providerTokensPlugin)
  await app.register(securityPlugin)
  await app.register(metricsPlugin)
  await app.register(toolCallsPlugin)
  await app.register(healthRoutes)
  await app.register(protectedResourceRoutes)
  await app.register(oauthRoutes)
  await app.register(proxyPlugin)
  return app
}
