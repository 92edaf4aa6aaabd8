import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { buildGateway, startRedis } from './helper.js'
import { hashSecret } from '../src/oauth/secrets.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

t.test('garbage written into Redis is treated as absent and logged, never a 500', async t => {
  const redis = await startRedis(t)
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const logLines: string[] = []
  const app = await buildGateway(t, { config, env: { REDIS_URL: redis.url }, logLines })

  const registered = await app.inject({ method: 'POST', url: '/oauth/register', payload: { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' } })
  const clientId = registered.json().client_id as string
  await raw.set(`mcpgw:client:${clientId}`, 'not json at all')
  const token = await app.inject({ method: 'POST', url: '/oauth/token', headers: FORM, payload: `grant_type=refresh_token&refresh_token=fam.secret&client_id=${clientId}` })
  t.equal(token.statusCode, 401, 'a corrupt client record: as if the client were unknown')
  t.equal(token.json().error, 'invalid_client')

  await raw.set('mcpgw:client:foreign', JSON.stringify({ client_id: 'foreign', redirect_uris: 'not a list' }))
  const foreign = await app.inject({ method: 'POST', url: '/oauth/token', headers: FORM, payload: 'grant_type=refresh_token&refresh_token=fam.secret&client_id=foreign' })
  t.equal(foreign.statusCode, 401, 'a record of another shape: the same')

  const preregistered = await buildGateway(t, {
    config: { ...config, clients: [{ client_id: 'cli', redirect_uris: ['http://127.0.0.1/cb'] }] },
    env: { REDIS_URL: redis.url },
    logLines
  })
  await raw.set('mcpgw:family:fam', '{"familyId":"fam","currentHash":7}')
  const refresh = await preregistered.inject({ method: 'POST', url: '/oauth/token', headers: FORM, payload: 'grant_type=refresh_token&refresh_token=fam.secret&client_id=cli' })
  t.equal(refresh.statusCode, 400, 'a corrupt refresh family: an unknown refresh token')
  t.equal(refresh.json().error, 'invalid_grant')

  await raw.set('mcpgw:upstream:user-1', 'garbage.garbage')
  t.equal(await app.upstreamTokens.get('user-1'), null, 'unreadable provider tokens: none held (the user signs in again)')

  const logged = logLines.map(line => JSON.parse(line) as { msg: string, kind?: string })
  for (const kind of ['client', 'family', 'upstream']) {
    t.ok(logged.some(l => l.kind === kind && /stored \S+ record ignored/.test(l.msg)), `the ${kind} record was logged`)
  }
  t.notMatch(logLines.join('\n'), /not json at all|garbage\.garbage/, 'without the stored content')
})

t.test('ENCRYPTION_KEY rotation: the first key seals, the others still open; a removed key reads as absent', async t => {
  const redis = await startRedis(t)
  const oldKey = randomBytes(32).toString('base64')
  const newKey = randomBytes(32).toString('base64')
  const gateway = async (ENCRYPTION_KEY: string): ReturnType<typeof buildGateway> => await buildGateway(t, { config, env: { REDIS_URL: redis.url, ENCRYPTION_KEY } })
  const before = await gateway(oldKey)
  await before.upstreamTokens.save('ana', { access_token: 'at-1', refresh_token: 'rt-1' })

  const rotated = await gateway(`${newKey},${oldKey}`)
  t.match(await rotated.upstreamTokens.get('ana'), { access_token: 'at-1', refresh_token: 'rt-1' }, 'what the old key sealed still opens')
  await rotated.upstreamTokens.save('ana', { access_token: 'at-2' })

  const after = await gateway(newKey)
  t.match(await after.upstreamTokens.get('ana'), { access_token: 'at-2', refresh_token: 'rt-1' }, 'rewritten with the new key: the old one can go')
  t.equal(await before.upstreamTokens.get('ana'), null, 'a replica still on the old key alone reads nothing, and does not fail')
})

t.test('an approval is stored under the key docs/storage.md names, holding the approved scopes', async t => {
  const redis = await startRedis(t)
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const app = await buildGateway(t, { config, env: { REDIS_URL: redis.url } })
  const approvalsBefore = await raw.keys('mcpgw:*')
  await app.authorizationFlow.approve('ana', 'client-1', '/calc/mcp', ['mcp'])
  const added = (await raw.keys('mcpgw:*')).filter(k => !approvalsBefore.includes(k))
  t.same(added, [`mcpgw:consent:${hashSecret('ana\nclient-1\n/calc/mcp')}`], 'one consent record under the documented key')
  t.same(JSON.parse(await raw.get(added[0]) as string), ['mcp'])
})
