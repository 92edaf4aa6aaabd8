import { buildApp } from '../src/app.js'

/**
 * The gateway as the bench runs it: its own process (so its CPU time and RSS can be read from
 * /proc), built by the same buildApp as production with the production logger (info level to
 * stdout, which the bench points at a file), metrics on, Redis as the store, and users logging
 * in through the bench's OIDC provider. Tells the bench over IPC which tokens to send.
 *
 * Environment: BENCH_PORT, BENCH_UPSTREAM (origin), REDIS_URL (or REDIS_SENTINELS with
 * REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_NODES; REDIS_WAIT_REPLICAS), OAUTH_OIDC_ISSUER,
 * OAUTH_OIDC_CLIENT_ID, OAUTH_OIDC_CLIENT_SECRET; BENCH_OTLP (an OTLP/HTTP endpoint) traces every request.
 */
const port = Number(process.env.BENCH_PORT)
const upstream = process.env.BENCH_UPSTREAM as string
const base = `http://127.0.0.1:${port}`

const app = await buildApp({
  env: {
    BASE_URL: base,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    KEYS_FILE: '',
    REDIS_URL: process.env.REDIS_URL,
    REDIS_SENTINELS: process.env.REDIS_SENTINELS,
    REDIS_SENTINEL_MASTER: process.env.REDIS_SENTINEL_MASTER,
    REDIS_CLUSTER_NODES: process.env.REDIS_CLUSTER_NODES,
    REDIS_WAIT_REPLICAS: process.env.REDIS_WAIT_REPLICAS,
    OAUTH_PROVIDER: 'oidc',
    OAUTH_OIDC_ISSUER: process.env.OAUTH_OIDC_ISSUER,
    OAUTH_OIDC_CLIENT_ID: process.env.OAUTH_OIDC_CLIENT_ID,
    OAUTH_OIDC_CLIENT_SECRET: process.env.OAUTH_OIDC_CLIENT_SECRET,
    // The refresh bench sends each grant from its own X-Forwarded-For address (see run.ts).
    TRUST_PROXY: 'true',
    OTEL_EXPORTER_OTLP_ENDPOINT: process.env.BENCH_OTLP,
    OTEL_TRACES_SAMPLER: 'always_on'
  },
  configFile: {
    proxies: [
      { pattern: '/bench/mcp', target_url: `${upstream}/mcp` },
      // The same upstream behind tool rules: every body read strictly, each tools/call decided.
      { pattern: '/policy/mcp', target_url: `${upstream}/mcp`, tools: { allow: ['add', 'read_*'], deny: ['*_admin'] } },
      { pattern: '/sse/mcp', target_url: `${upstream}/sse` }
    ]
  }
})
await app.listen({ host: '127.0.0.1', port })

// Full authentication: ES256 tokens minted for each route's resource URL, as /oauth/token would.
const mint = (pattern: string): string => {
  const route = app.config.routeByPattern.get(pattern) as NonNullable<ReturnType<typeof app.config.routeByPattern.get>>
  return app.tokens.mint({ sub: 'bench-user', audience: route.resourceUrl, scopes: route.scopes, clientId: 'bench-client' }).token
}
process.send?.({ tokens: { '/bench/mcp': mint('/bench/mcp'), '/policy/mcp': mint('/policy/mcp'), '/sse/mcp': mint('/sse/mcp') } })

process.once('SIGTERM', () => {
  app.close().then(() => process.exit(0), () => process.exit(1))
})
