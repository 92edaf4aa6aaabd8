import t from 'tap'
import { buildGateway, sleep, startRedis } from './helper.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }

t.test('token requests are limited per client and IP: one noisy client does not lock out the others', async t => {
  const app = await buildGateway(t, { config })
  const ask = async (clientId: string): Promise<number> => (await app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `grant_type=refresh_token&refresh_token=x.y&client_id=${clientId}`
  })).statusCode
  let last = 0
  for (let i = 0; i < 121; i++) last = await ask('noisy')
  t.equal(last, 429)
  t.equal(await ask('quiet'), 401, 'another client behind the same IP still gets through to the checks')
})

t.test('registration is limited per IP', async t => {
  const app = await buildGateway(t, { config })
  const register = async (ip: string): Promise<number> => (await app.inject({
    method: 'POST', url: '/oauth/register', remoteAddress: ip, payload: { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' }
  })).statusCode
  let last = 0
  for (let i = 0; i < 61; i++) last = await register('127.0.0.2')
  t.equal(last, 429)
  t.equal(await register('127.0.0.3'), 201)
})

t.test('with Redis down the OAuth endpoints answer 503 with Retry-After', async t => {
  const redis = await startRedis(t)
  const app = await buildGateway(t, { config, env: { REDIS_URL: redis.url } })
  await redis.kill()
  const res = await app.inject({ method: 'POST', url: '/oauth/register', payload: { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' } })
  t.equal(res.statusCode, 503)
  t.ok(res.headers['retry-after'])
  t.equal(res.json().error, 'temporarily_unavailable')
  // Closing the gateway waits for its Redis connections to end cleanly: let them come back.
  await redis.start()
  for (let i = 0; i < 100 && (await app.inject('/readyz')).statusCode !== 200; i++) await sleep(100)
  t.equal((await app.inject({ method: 'POST', url: '/oauth/register', payload: { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' } })).statusCode, 201, 'and recover when it is back')
})
