// Issue 9, low: an allow-list refusal goes back to the client as the error_description of a
// redirect; it must not tell the client (or whoever reads its logs) the user's email address.
import t from 'tap'
import { TestBrowser } from '../fixtures/browser.js'
import { REDIRECT, authorizeUrl, registerClient, startAuthorizationServer, type AuthorizationSetup } from '../fixtures/authorization.js'

const config = {
  proxies: [
    { pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' },
    { pattern: '/team/mcp', target_url: 'http://127.0.0.1:9/mcp', allowed_emails: ['ana@example.com'] }
  ]
}

let setup: AuthorizationSetup
let clientId: string
t.before(async () => {
  setup = await startAuthorizationServer(t, { config, env: { ALLOWED_EMAIL_DOMAINS: 'example.com' } })
  clientId = (await registerClient(setup.base)).body.client_id as string
})

for (const [who, email, pattern] of [
  ['the gateway\'s list', 'eve@elsewhere.org', '/calc/mcp'],
  ['the route\'s list', 'bob@example.com', '/team/mcp']
] as const) {
  t.test(`refused by ${who}: the redirect says why without the address`, async t => {
    setup.idp.loginAs({ email })
    const back = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}${pattern}` }), REDIRECT)
    t.equal(back.searchParams.get('error'), 'access_denied')
    const description = back.searchParams.get('error_description') ?? ''
    t.match(description, /not allowed/, 'the reason is still given')
    t.notOk(back.href.toLowerCase().includes(email.split('@')[0]), `${back.href} does not name the user`)
  })
}
