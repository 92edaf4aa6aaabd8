import t from 'tap'
import {
  generateClientCredentials,
  validateClientMetadata
} from '../../src/oauth/client-metadata.js'
import { hashSecret, verifySecret } from '../../src/oauth/secrets.js'

t.test('what MCP clients send is accepted and normalised', async t => {
  // Shaped like the MCP SDK client's registration request.
  const sdk = validateClientMetadata({
    redirect_uris: ['http://localhost:6274/oauth/callback'],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    client_name: '  MCP Inspector ',
    client_uri: 'https://github.com/modelcontextprotocol/inspector',
    application_type: 'native',
    scope: 'mcp:tools'
  })
  t.same(sdk, {
    redirect_uris: ['http://localhost:6274/oauth/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    client_name: 'MCP Inspector'
  }, 'unknown fields dropped, name trimmed')

  const minimal = validateClientMetadata({ redirect_uris: ['https://app.example.com/cb', 'https://app.example.com/cb'] })
  t.same(minimal, {
    redirect_uris: ['https://app.example.com/cb'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic'
  }, 'RFC 7591 defaults; duplicate URIs collapsed')
  t.notOk('client_name' in minimal)
})

t.test('bad redirect URIs are invalid_redirect_uri', async t => {
  t.throws(() => validateClientMetadata({ redirect_uris: ['http://app.example.com/cb'] }),
    { code: 'invalid_redirect_uri', statusCode: 400, message: /http is only allowed on loopback/ })
  t.throws(() => validateClientMetadata({ redirect_uris: ['https://ok.example/cb', 'javascript:alert(1)'] }),
    { code: 'invalid_redirect_uri', message: /javascript:/ })
})

t.test('other bad metadata is invalid_client_metadata', async t => {
  const uris = ['https://app.example.com/cb']
  const cases: Array<[unknown, RegExp]> = [
    [null, /JSON object/],
    [[], /JSON object/],
    [{}, /redirect_uris is required/],
    [{ redirect_uris: [] }, /redirect_uris is required/],
    [{ redirect_uris: 'https://app.example.com/cb' }, /redirect_uris is required/],
    [{ redirect_uris: Array.from({ length: 11 }, (_, i) => `https://app.example.com/cb${i}`) }, /at most 10/],
    [{ redirect_uris: uris, grant_types: ['client_credentials'] }, /client_credentials is not supported/],
    [{ redirect_uris: uris, grant_types: ['implicit', 'authorization_code'] }, /implicit is not supported/],
    [{ redirect_uris: uris, grant_types: ['refresh_token'] }, /must include authorization_code/],
    [{ redirect_uris: uris, grant_types: [] }, /grant_types must be a list/],
    [{ redirect_uris: uris, grant_types: Array(11).fill('authorization_code') }, /grant_types must be a list of 1-10/],
    [{ redirect_uris: uris, response_types: ['token'] }, /response_types must be \["code"\]/],
    [{ redirect_uris: uris, response_types: ['code', 'token'] }, /response_types/],
    [{ redirect_uris: uris, token_endpoint_auth_method: 'private_key_jwt' }, /token_endpoint_auth_method must be one of none, client_secret_basic, client_secret_post/],
    [{ redirect_uris: uris, token_endpoint_auth_method: 1 }, /token_endpoint_auth_method/],
    [{ redirect_uris: uris, client_name: 'x'.repeat(101) }, /client_name/],
    [{ redirect_uris: uris, client_name: '   ' }, /client_name/],
    [{ redirect_uris: uris, client_name: 42 }, /client_name/],
    [{ redirect_uris: uris, client_name: 'Good App\u202Eevil' }, /client_name/],
    [{ redirect_uris: uris, client_name: 'line\nbreak' }, /client_name/]
  ]
  for (const [body, message] of cases) {
    t.throws(() => validateClientMetadata(body), { code: 'invalid_client_metadata', statusCode: 400, message },
      JSON.stringify(body)?.slice(0, 80) ?? String(body))
  }
})

t.test('rules restrict auth methods (metadata documents: public clients only)', async t => {
  const rules = { authMethods: ['none'] as const, defaultAuthMethod: 'none' as const }
  t.equal(validateClientMetadata({ redirect_uris: ['https://a.example/cb'] }, rules).token_endpoint_auth_method, 'none')
  t.throws(() => validateClientMetadata({ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'client_secret_post' }, rules),
    { code: 'invalid_client_metadata', message: /must be one of none$/ })
})

t.test('client credentials', async t => {
  const publicClient = generateClientCredentials('none')
  t.match(publicClient.clientId, /^[A-Za-z0-9_-]{22}$/, '128-bit base64url id')
  t.equal(publicClient.clientSecret, undefined, 'no secret for a public client')

  const a = generateClientCredentials('client_secret_basic')
  const b = generateClientCredentials('client_secret_post')
  t.match(a.clientSecret, /^[A-Za-z0-9_-]{43}$/, '256-bit base64url secret')
  t.not(a.clientId, b.clientId)
  t.not(a.clientSecret, b.clientSecret)

  const hash = hashSecret(a.clientSecret!)
  t.not(hash, a.clientSecret, 'the stored form is not the secret')
  t.equal(verifySecret(a.clientSecret!, hash), true)
  t.equal(verifySecret(b.clientSecret!, hash), false)
  t.equal(verifySecret('', hash), false)
  t.equal(verifySecret(a.clientSecret!, hash.slice(1)), false, 'a truncated hash never verifies')
})
