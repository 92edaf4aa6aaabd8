import t from 'tap'
import { randomBytes } from 'node:crypto'
import { buildGateway, freePort, startRedis } from './helper.js'
import { TestBrowser } from './fixtures/browser.js'
import { REDIRECT, authorizeUrl, registerClient, startAuthorizationServer } from './fixtures/authorization.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }

t.test('rotating ENCRYPTION_KEY keeps browsers signed in: cookies signed with the old key still verify while it is listed', async t => {
  const redis = await startRedis(t)
  const oldKey = randomBytes(32).toString('base64')
  const newKey = randomBytes(32).toString('base64')
  const setup = await startAuthorizationServer(t, { config, env: { REDIS_URL: redis.url, ENCRYPTION_KEY: oldKey } })
  const clientId = (await registerClient(setup.base)).body.client_id as string
  const browser = new TestBrowser()
  const first = await browser.authorize(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }), REDIRECT)
  t.ok(first.searchParams.get('code'), 'signed in on the gateway with the old key')

  // Replicas on other ports, same BASE_URL and Redis: the browser sends them the same cookies.
  const replica = async (ENCRYPTION_KEY: string): Promise<string> => {
    const port = await freePort()
    await buildGateway(t, { listen: true, port, env: { ...setup.env, ENCRYPTION_KEY }, config })
    return `http://127.0.0.1:${port}`
  }
  /** 302 to the client: the session verified; 200: the consent page, asked again. */
  const again = async (origin: string): Promise<{ status: number, toClient: boolean }> => {
    const hop = await browser.request(authorizeUrl(origin, { client_id: clientId, resource: `${setup.base}/calc/mcp` }))
    return { status: hop.status, toClient: (hop.location ?? '').startsWith(REDIRECT) }
  }
  t.same(await again(await replica(`${newKey},${oldKey}`)), { status: 302, toClient: true }, 'new key first, old one listed: the session still counts (no consent page)')
  t.same(await again(await replica(newKey)), { status: 200, toClient: false }, 'old key dropped: the session no longer verifies, the user is asked again (never an error)')
})
