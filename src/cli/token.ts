import { loadKeyMaterial } from '../keys/key-ring.js'
import { TokenService } from '../tokens/token-service.js'
import { openCliContext, parseDuration, parseFlags, runCli } from './cli-context.js'

const USAGE = 'usage: npm run token -- --sub <subject> --route <pattern> [--ttl 1h] [--scope "mcp ..."] [--email <email>] [--client-id <id>]'

/**
 * Mints an access token for a machine client, signed with the gateway's key, for one route:
 *   npm run token -- --sub ci-bot --route /calc/mcp --ttl 1h
 */
runCli(async () => {
  const flags = parseFlags(process.argv.slice(2), ['sub', 'route', 'ttl', 'scope', 'email', 'client-id'])
  if (flags.sub === undefined || flags.route === undefined) throw new Error(USAGE)
  const ttl = parseDuration(flags.ttl ?? '1h')
  if (ttl < 1 || ttl > 366 * 86400) throw new Error('--ttl must be between 1 second and 366 days')
  const { config, store } = await openCliContext()
  try {
    const route = config.routeByPattern.get(flags.route)
    if (route === undefined) throw new Error(`--route ${flags.route} is not configured (routes: ${config.routes.map(r => r.pattern).join(', ') || 'none'})`)
    if (store.kind === 'memory' && config.env.JWT_SIGNING_KEY === undefined && config.env.KEYS_FILE === '') {
      throw new Error('The gateway keeps its signing key in memory only: set JWT_SIGNING_KEY, KEYS_FILE or Redis so this command signs with the same key')
    }
    const keys = await loadKeyMaterial(config.env, store)
    const service = new TokenService(config.env.BASE_URL, keys.signing, ttl)
    return service.mintAccess({
      sub: flags.sub,
      audience: route.resourceUrl,
      scopes: flags.scope !== undefined ? flags.scope.split(' ').filter(s => s !== '') : route.scopes,
      clientId: flags['client-id'] ?? 'operator-cli',
      email: flags.email,
      ttlSeconds: ttl
    }).token
  } finally {
    await store.close()
  }
})
