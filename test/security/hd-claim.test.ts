// Issue 9, low: `hd` is Google's claim (a Workspace domain Google vouches for). Any other OIDC
// provider may put whatever it likes there, so a user of another domain whose ID token says
// `hd: "example.com"` must not pass ALLOWED_EMAIL_DOMAINS=example.com.
import t from 'tap'
import { TestBrowser } from '../fixtures/browser.js'
import { REDIRECT, authorizeUrl, registerClient, startAuthorizationServer, type AuthorizationSetup } from '../fixtures/authorization.js'

const config = { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] }

let setup: AuthorizationSetup
let clientId: string
t.before(async () => {
  // hd in the ID token itself, where a Google login would read it.
  setup = await startAuthorizationServer(t, { config, env: { ALLOWED_EMAIL_DOMAINS: 'example.com' }, idp: { claimsInIdToken: true } })
  clientId = (await registerClient(setup.base)).body.client_id as string
})

async function loginAs (user: { email: string, hd?: string }): Promise<URLSearchParams> {
  setup.idp.loginAs(user)
  const back = await new TestBrowser().authorize(authorizeUrl(setup.base, { client_id: clientId, resource: `${setup.base}/calc/mcp` }), REDIRECT)
  return back.searchParams
}

t.test('an OIDC provider\'s hd claim does not admit an email of another domain', async t => {
  const forged = await loginAs({ email: 'mallory@evil.test', hd: 'example.com' })
  t.equal(forged.get('error'), 'access_denied')
  t.notOk(forged.get('code'), 'no code for the claimed domain')

  const member = await loginAs({ email: 'ana@example.com', hd: 'example.com' })
  t.ok(member.get('code'), 'the email\'s own domain still passes')
})
