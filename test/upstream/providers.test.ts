import t from 'tap'
import { githubProvider } from '../../src/upstream/github.js'
import { genericOidcProvider, googleProvider } from '../../src/upstream/oidc.js'

const client = { clientId: 'gw', clientSecret: 's', redirectUri: 'https://gw.example/oauth/callback', scopes: ['openid', 'email'] }
const start = { state: 'st', nonce: 'n', codeChallenge: 'c'.repeat(43), offlineConsent: true }

t.test('Google: offline access, prompt=consent until a refresh token is held, hd for one allowed domain', async t => {
  const google = googleProvider(client)
  const first = new URL(google.authorizationUrl({ ...start, domainHint: 'example.com' }))
  t.equal(first.origin + first.pathname, 'https://accounts.google.com/o/oauth2/v2/auth')
  t.match(Object.fromEntries(first.searchParams), {
    response_type: 'code',
    client_id: 'gw',
    redirect_uri: client.redirectUri,
    scope: 'openid email',
    state: 'st',
    nonce: 'n',
    code_challenge_method: 'S256',
    access_type: 'offline',
    prompt: 'consent',
    hd: 'example.com'
  })
  const later = new URL(google.authorizationUrl({ ...start, offlineConsent: false }))
  t.equal(later.searchParams.get('prompt'), null)
  t.equal(later.searchParams.get('hd'), null)
  t.equal(google.loginOrigin, 'https://accounts.google.com')
})

t.test('a generic OIDC provider gets no Google parameters, and offline_access with prompt=consent until a refresh token is held; GitHub asks for the email scope', async t => {
  const metadata = { issuer: 'https://idp.example', authorization_endpoint: 'https://idp.example/auth', token_endpoint: 'https://idp.example/token', jwks_uri: 'https://idp.example/jwks' }
  const oidc = genericOidcProvider({ ...metadata, scopes_supported: ['openid', 'email', 'offline_access'] }, client)
  const first = new URL(oidc.authorizationUrl(start))
  t.equal(first.searchParams.get('access_type'), null)
  t.equal(first.searchParams.get('nonce'), 'n')
  t.equal(first.searchParams.get('scope'), 'openid email offline_access')
  t.equal(first.searchParams.get('prompt'), 'consent')
  const later = new URL(oidc.authorizationUrl({ ...start, offlineConsent: false }))
  t.equal(later.searchParams.get('scope'), 'openid email')
  t.equal(later.searchParams.get('prompt'), null)
  const withoutOffline = new URL(genericOidcProvider(metadata, client).authorizationUrl(start))
  t.equal(withoutOffline.searchParams.get('scope'), 'openid email', 'not asked of a provider that does not offer it')
  t.equal(withoutOffline.searchParams.get('prompt'), null)

  const github = new URL(githubProvider(client).authorizationUrl(start))
  t.equal(github.origin, 'https://github.com')
  t.equal(github.searchParams.get('scope'), 'read:user user:email')
  t.equal(github.searchParams.get('code_challenge_method'), 'S256')
})
