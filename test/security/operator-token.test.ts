import t from 'tap'
import { buildGateway, finish, node, startRedis, until, workdir } from '../helper.js'
import { startMcpUpstream } from '../fixtures/mcp-upstream.js'

// Attack: an operator token leaks. It must not live for a year, and the operator must be able to
// shut it out of every replica with `npm run token -- revoke <jti>`.
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }
const headers = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' })
const BASE_URL = 'http://gateway.test'
const token = (args: string[], env: Record<string, string>, dir: string): ReturnType<typeof finish> => finish(node('src/cli/token.ts', args, { BASE_URL, ...env }, dir))
const claimsOf = (jwt: string): { iat: number, exp: number, jti: string } => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

t.test('operator tokens', async t => {
  const redis = await startRedis(t)
  const upstream = await startMcpUpstream({ jsonResponse: true })
  t.teardown(upstream.close)
  const proxies = [{ pattern: '/calc/mcp', target_url: upstream.url }]
  const dir = workdir(proxies)
  const env = { REDIS_URL: redis.url }
  const mint = ['--sub', 'ci-bot', '--route', '/calc/mcp']

  t.test('a lifetime over OPERATOR_TOKEN_MAX_TTL is refused, the default is short', async t => {
    const year = await token([...mint, '--ttl', '365d'], env, dir)
    t.equal(year.code, 1, 'a one-year token is refused')
    t.equal(year.stdout, '', 'and nothing is printed on stdout')
    t.match(year.stderr, /OPERATOR_TOKEN_MAX_TTL \(86400 s\)/)
    const capped = await token([...mint, '--ttl', '1h'], { ...env, OPERATOR_TOKEN_MAX_TTL: '600' }, dir)
    t.equal(capped.code, 1, 'the maximum is configurable')
    t.match(capped.stderr, /OPERATOR_TOKEN_MAX_TTL \(600 s\)/)
    const plain = await token(mint, env, dir)
    t.equal(plain.code, 0, plain.stderr)
    const claims = claimsOf(plain.stdout.trim())
    t.ok(claims.exp - claims.iat <= 86400, `the default lifetime (${claims.exp - claims.iat} s) is at most a day`)
  })

  t.test('a token revoked with the CLI is refused by every running replica', async t => {
    const a = await buildGateway(t, { env, config: { proxies } })
    const b = await buildGateway(t, { env, config: { proxies } })
    const minted = await token([...mint, '--ttl', '1h'], env, dir)
    t.equal(minted.code, 0, minted.stderr)
    t.match(minted.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'stdout is the token alone')
    const jwt = minted.stdout.trim()
    const { jti } = claimsOf(jwt)
    t.match(minted.stderr, `npm run token -- revoke ${jti}`, 'stderr names the jti and how to revoke it')
    t.notMatch(minted.stderr, jwt, 'the token is not repeated on stderr')
    const status = async (app: typeof a): Promise<number> => (await app.inject({ method: 'POST', url: '/calc/mcp', headers: headers(jwt), payload: INIT })).statusCode
    t.same([await status(a), await status(b)], [200, 200], 'both replicas accept it before')

    const revoked = await token(['revoke', jti], env, dir)
    t.equal(revoked.code, 0, revoked.stderr)
    t.match(revoked.stdout, `revoked ${jti}`)
    t.ok(await until(async () => await status(a) === 401 && await status(b) === 401, 3000), 'both replicas refuse it')
    const refused = await b.inject({ method: 'POST', url: '/calc/mcp', headers: headers(jwt), payload: INIT })
    t.match(refused.headers['www-authenticate'], /error="invalid_token"/)
    const late = await buildGateway(t, { env, config: { proxies } })
    t.equal(await status(late), 401, 'and so does a replica started afterwards')
  })

  t.test('revoke refuses to pretend on the memory store', async t => {
    const run = await token(['revoke', 'abc'], { KEYS_FILE: '' }, dir)
    t.equal(run.code, 1)
    t.match(run.stderr, /revoke needs Redis/)
    const bad = await token(['revoke', 'a b'], env, dir)
    t.equal(bad.code, 1, 'a malformed jti is refused')
    t.match(bad.stderr, /usage: npm run token -- revoke <jti>/)
  })
})
