import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync, mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { authorizeUrl, registerClient, startAuthorizationServer } from './fixtures/authorization.js'

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it). */
const CHROMIUM = '/usr/bin/chromium'

t.test('a person approves on the consent page in headless Chromium and the client gets its code', async t => {
  // The client's redirect endpoint, as a native MCP client runs one on loopback.
  let delivered: URL | undefined
  const app = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname === '/callback') delivered = url
    res.setHeader('content-type', 'text/plain')
    res.end('client received the code')
  })
  await new Promise<void>(resolve => app.listen(0, '127.0.0.1', resolve))
  t.teardown(() => app.close())
  const REDIRECT = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`

  const { base } = await startAuthorizationServer(t, { config: { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] } })
  const clientId = (await registerClient(base, { client_name: 'Browser client', redirect_uris: [REDIRECT] })).body.client_id as string

  const dir = mkdtempSync(join(tmpdir(), 'mcpgw-chromium-'))
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
  })
  t.teardown(async () => await browser.close())
  const page = await browser.newPage()

  const response = await page.goto(authorizeUrl(base, { client_id: clientId, redirect_uri: REDIRECT, resource: `${base}/calc/mcp` }))
  t.equal(response?.status(), 200)
  t.equal(response?.headers()['x-frame-options'], 'DENY')
  t.match(await page.textContent('h1'), /Allow Browser client\?/)
  const screenshot = join(dir, 'consent.png')
  await page.screenshot({ path: screenshot, fullPage: true })
  t.ok(existsSync(screenshot) && statSync(screenshot).size > 1000, 'screenshot saved')

  await Promise.all([
    page.waitForURL(`${REDIRECT}**`, { timeout: 15_000 }),
    page.click('button[value=approve]')
  ])
  t.ok(delivered?.searchParams.get('code'), 'the code reached the client')
  t.equal(delivered?.searchParams.get('iss'), base)
  t.equal(delivered?.searchParams.get('state'), 'st-1')
})
