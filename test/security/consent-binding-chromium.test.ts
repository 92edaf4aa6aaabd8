import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser, type Page } from 'playwright-core'
import { buildGateway, freePort } from '../helper.js'
import { authorizeUrl, registerClient } from '../fixtures/authorization.js'
import { startOidcIdp, type OidcIdp } from '../fixtures/oidc-provider.js'

/**
 * The same binding in a real browser, with the gateway and the provider on different sites
 * (gateway.test and 127.0.0.1), as in production: the provider's redirect back is a cross-site
 * navigation, on which only a SameSite=Lax cookie travels. Two browser contexts are two people.
 */
const CHROMIUM = '/usr/bin/chromium'
const GATEWAY_HOST = 'gateway.test'

interface Site { base: string, local: string, idp: OidcIdp, redirect: string, continuePage: (to: string) => string, delivered: () => URL[] }

async function startSite (t: Test): Promise<Site> {
  const delivered: URL[] = []
  const app = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname === '/callback') delivered.push(url)
    if (url.pathname === '/continue') {
      // Stands in for the provider's login page (same site as the provider): the person clicks on.
      res.setHeader('content-type', 'text/html')
      res.end(`<a id="go" href="${(url.searchParams.get('to') ?? '').replaceAll('&', '&amp;').replaceAll('"', '&quot;')}">Continue</a>`)
      return
    }
    res.setHeader('content-type', 'text/plain')
    res.end('client received the answer')
  })
  await new Promise<void>(resolve => app.listen(0, '127.0.0.1', resolve))
  t.teardown(() => app.close())
  const redirect = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`

  const port = await freePort()
  const base = `http://${GATEWAY_HOST}:${port}`
  const idp = await startOidcIdp(base)
  t.teardown(idp.close)
  await buildGateway(t, {
    listen: true,
    port,
    config: { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] },
    env: { BASE_URL: base, OAUTH_PROVIDER: 'oidc', OAUTH_OIDC_ISSUER: idp.issuer, OAUTH_OIDC_CLIENT_ID: idp.clientId, OAUTH_OIDC_CLIENT_SECRET: idp.clientSecret }
  })
  const continuePage = (to: string): string => `${redirect.replace('/callback', '/continue')}?to=${encodeURIComponent(to)}`
  return { base, local: `http://127.0.0.1:${port}`, idp, redirect, continuePage, delivered: () => delivered }
}

let browser: Browser
t.before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--host-resolver-rules=MAP ${GATEWAY_HOST} 127.0.0.1`]
  })
})
t.teardown(async () => await browser?.close())

async function consentUrl (site: Site): Promise<string> {
  // Registered from the command line, as a client would, through the gateway's loopback address.
  const clientId = (await registerClient(site.local, { client_name: 'Chromium client', redirect_uris: [site.redirect] })).body.client_id as string
  return authorizeUrl(site.base, { client_id: clientId, redirect_uri: site.redirect, resource: `${site.base}/calc/mcp` })
}

/** Approves the consent page in `page` and keeps the provider URL it redirects to instead of following it. */
async function approveAndHold (page: Page, site: Site): Promise<string> {
  let held: (url: string) => void = () => {}
  const kept = new Promise<string>(resolve => { held = resolve })
  await page.route(`${site.base}/oauth/consent`, async route => {
    // Playwright's own fetch does not see Chromium's host mapping: the gateway's loopback address.
    const response = await route.fetch({ url: `${site.local}/oauth/consent`, maxRedirects: 0 })
    held(response.headers().location)
    // Its cookies are kept; the redirect is not followed.
    await route.fulfill({ response, status: 200, body: 'kept' })
  })
  await page.goto(await consentUrl(site))
  const [providerUrl] = await Promise.all([kept, page.click('button[value=approve]')])
  return providerUrl
}

t.test('the honest flow completes across sites: the login cookie survives the provider\'s cross-site redirect', async t => {
  const site = await startSite(t)
  const context = await browser.newContext()
  t.teardown(async () => await context.close())
  const page = await context.newPage()
  const providerUrl = await approveAndHold(page, site)
  // From a page of the provider's site, as after typing a password there: a cross-site navigation
  // back to the gateway, on which a SameSite=Strict cookie would not travel.
  await page.goto(site.continuePage(providerUrl))
  await Promise.all([page.waitForURL(`${site.redirect}**`, { timeout: 15_000 }), page.click('#go')])
  const [answer] = site.delivered()
  t.ok(answer?.searchParams.get('code'), 'the client got its code')
  t.equal(site.idp.logins(), 1)
  const cookies = (await context.cookies(site.base)).map(c => c.name)
  t.ok(cookies.includes('mcpgw-session'), 'a gateway session')
  t.notOk(cookies.some(name => name.startsWith('mcpgw-login-')), 'the login cookie was cleared')
})

t.test('a provider URL approved in the attacker\'s browser gets the victim\'s browser an error page, and the attacker no code', async t => {
  const site = await startSite(t)
  const attacker = await browser.newContext()
  t.teardown(async () => await attacker.close())
  const page = await attacker.newPage()
  // The attacker approves, then keeps the provider URL instead of following it.
  const providerUrl = await approveAndHold(page, site)
  t.match(providerUrl, /\/auth\?/, 'the attacker holds the provider URL')

  site.idp.loginAs({ email: 'victim@example.com' })
  const victim = await browser.newContext()
  t.teardown(async () => await victim.close())
  const victimPage = await victim.newPage()
  const landed = await victimPage.goto(providerUrl)
  t.equal(site.idp.logins(), 1, 'the victim was signed in at the provider')
  t.equal(new URL(landed?.url() ?? '').pathname, '/oauth/callback', 'the victim ends at the gateway')
  t.equal(landed?.status(), 400)
  t.match(await victimPage.textContent('h1'), /Login expired/)
  t.same(site.delivered(), [], 'no code went to the attacker\'s redirect URI')
  t.notOk((await victim.cookies(site.base)).some(c => c.name === 'mcpgw-session'), 'no gateway session for the victim')
})
