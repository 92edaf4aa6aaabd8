import { systemClock } from '../authorization/clock.js'
import { loadKeyMaterial } from '../keys/key-ring.js'
import { TokenService } from '../tokens/token-service.js'
import { JTI_PATTERN, publishRevocation } from '../tokens/revocations.js'
import { openCliContext, parseDuration, parseFlags, runCli } from './cli-context.js'

const USAGE = 'usage: npm run token -- --sub <subject> --route <pattern> [--ttl 1h] [--scope "mcp ..."] [--email <email>] [--client-id <id>]\n' +
  '       npm run token -- revoke <jti>'
const DEFAULT_TTL = 3600

/**
 * Mints an access token for a machine client, signed with the gateway's key, for one route, and
 * revokes one on every replica:
 *   npm run token -- --sub ci-bot --route /calc/mcp --ttl 1h
 *   npm run token -- revoke <jti>
 */
runCli(async () => {
  const args = process.argv.slice(2)
  return args[0] === 'revoke' ? await revoke(args.slice(1)) : await mint(args)
})

async function mint (argv: string[]): Promise<string> {
  const flags = parseFlags(argv, ['sub', 'route', 'ttl', 'scope', 'email', 'client-id'])
  if (flags.sub === undefined || flags.route === undefined) throw new Error(USAGE)
  const requested = flags.ttl !== undefined ? parseDuration(flags.ttl) : undefined
  const { config, store } = await openCliContext()
  try {
    const max = config.env.OPERATOR_TOKEN_MAX_TTL
    const ttl = requested ?? Math.min(DEFAULT_TTL, max)
    if (ttl < 1 || ttl > max) throw new Error(`--ttl must be between 1 second and OPERATOR_TOKEN_MAX_TTL (${max} s)`)
    const route = config.routeByPattern.get(flags.route)
    if (route === undefined) throw new Error(`--route ${flags.route} is not configured (routes: ${config.routes.map(r => r.pattern).join(', ') || 'none'})`)
    if (store.kind === 'memory' && config.env.JWT_SIGNING_KEY === undefined && config.env.KEYS_FILE === '') {
      throw new Error('The gateway keeps its signing key in memory only: set JWT_SIGNING_KEY, KEYS_FILE or Redis so this command signs with the same key')
    }
    const keys = await loadKeyMaterial(config.env, store)
    const service = new TokenService(config.env.BASE_URL, keys.signing, ttl)
    const { token, jti, expiresAt } = service.mintAccess({
      sub: flags.sub,
      audience: route.resourceUrl,
      scopes: flags.scope !== undefined ? flags.scope.split(' ').filter(s => s !== '') : route.scopes,
      clientId: flags['client-id'] ?? 'operator-cli',
      email: flags.email,
      ttlSeconds: ttl
    })
    // On stderr: stdout stays the token alone, for TOKEN=$(npm run -s token -- ...).
    process.stderr.write(`jti ${jti}, expires ${new Date(expiresAt * 1000).toISOString()}; revoke with: npm run token -- revoke ${jti}\n`)
    return token
  } finally {
    await store.close()
  }
}

async function revoke (argv: string[]): Promise<string> {
  const [jti] = argv
  if (argv.length !== 1 || !JTI_PATTERN.test(jti)) throw new Error('usage: npm run token -- revoke <jti> (the jti that npm run token printed)')
  const { config, store } = await openCliContext()
  try {
    if (store.kind !== 'redis') {
      throw new Error('revoke needs Redis (REDIS_URL or REDIS_ADDR, as the gateway uses): on the memory store the deny list lives inside the gateway process, out of this command\'s reach')
    }
    // The jti alone does not tell when its token expires; no token the gateway mints lives longer than this.
    const until = systemClock.seconds() + Math.max(config.env.OPERATOR_TOKEN_MAX_TTL, config.env.ACCESS_TOKEN_TTL)
    await publishRevocation(store, jti, until)
    return `revoked ${jti} on every replica (denied until ${new Date(until * 1000).toISOString()})`
  } finally {
    await store.close()
  }
}
