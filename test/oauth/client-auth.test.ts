import t from 'tap'
import { authenticateClient, parseClientAuthentication } from '../../src/oauth/client-auth.js'
import { generateClientCredentials } from '../../src/oauth/client-metadata.js'
import { hashSecret } from '../../src/oauth/secrets.js'

const basic = (id: string, secret: string): string =>
  'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')

t.test('parses each method', async t => {
  t.same(parseClientAuthentication(basic('c1', 's1'), {}), { method: 'client_secret_basic', clientId: 'c1', clientSecret: 's1' })
  t.same(parseClientAuthentication(basic('c1', 's1'), { client_id: 'c1' }), { method: 'client_secret_basic', clientId: 'c1', clientSecret: 's1' },
    'the same client_id in the body is fine')
  t.same(parseClientAuthentication(undefined, { client_id: 'c1', client_secret: 's1' }), { method: 'client_secret_post', clientId: 'c1', clientSecret: 's1' })
  t.same(parseClientAuthentication(undefined, { client_id: 'c1' }), { method: 'none', clientId: 'c1' })
  t.same(parseClientAuthentication('', { client_id: 'c1' }), { method: 'none', clientId: 'c1' })
})

t.test('Basic credentials are form-urlencoded (RFC 6749 §2.3.1)', async t => {
  const id = 'https://app.example.com/client.json'
  const secret = 'p@ss:w+rd %'
  t.same(parseClientAuthentication(basic(id, secret), {}), { method: 'client_secret_basic', clientId: id, clientSecret: secret })
  const plus = 'Basic ' + Buffer.from('my+client:a+b').toString('base64')
  t.same(parseClientAuthentication(plus, {}), { method: 'client_secret_basic', clientId: 'my client', clientSecret: 'a b' }, '+ is a space')
  const colonInSecret = 'Basic ' + Buffer.from('c1:a:b').toString('base64')
  t.equal(parseClientAuthentication(colonInSecret, {}).method, 'client_secret_basic')
  t.match(parseClientAuthentication(colonInSecret, {}), { clientSecret: 'a:b' }, 'split at the first colon')
})

t.test('malformed or conflicting authentication', async t => {
  const challenge = { 'www-authenticate': 'Basic realm="mcp-gateway", charset="UTF-8"' }
  const cases: Array<[string | undefined, Record<string, string | string[]>, { code: string, message: RegExp, statusCode?: number, headers?: object }]> = [
    ['Bearer abc', {}, { code: 'invalid_client', statusCode: 401, headers: challenge, message: /must be HTTP Basic/ }],
    ['Basic !!!', {}, { code: 'invalid_client', statusCode: 401, message: /must be HTTP Basic/ }],
    ['Basic ' + Buffer.from('no-colon').toString('base64'), {}, { code: 'invalid_client', message: /client_id:client_secret/ }],
    ['Basic ' + Buffer.from(':secret').toString('base64'), {}, { code: 'invalid_client', message: /client_id:client_secret/ }],
    ['Basic ' + Buffer.from('c1:%zz').toString('base64'), {}, { code: 'invalid_client', message: /form-urlencoded/ }],
    [basic('c1', 's1'), { client_secret: 's1' }, { code: 'invalid_request', statusCode: 400, message: /not both/ }],
    [basic('c1', 's1'), { client_id: 'c2' }, { code: 'invalid_request', message: /differs from the Authorization header/ }],
    [undefined, {}, { code: 'invalid_client', statusCode: 401, message: /client authentication is missing/ }],
    [undefined, { client_secret: 's1' }, { code: 'invalid_client', message: /missing/ }],
    [undefined, { client_id: ['c1', 'c2'] }, { code: 'invalid_request', message: /client_id must not be repeated/ }],
    [undefined, { client_id: 'c1', client_secret: ['a', 'b'] }, { code: 'invalid_request', message: /client_secret must not be repeated/ }]
  ]
  for (const [header, body, expected] of cases) {
    t.throws(() => parseClientAuthentication(header, body), expected, `${header} ${JSON.stringify(body)}`)
  }
})

t.test('authenticateClient', async t => {
  const { clientSecret } = generateClientCredentials('client_secret_basic')
  const secret = clientSecret!
  const confidential = { token_endpoint_auth_method: 'client_secret_basic' as const, client_secret_hash: hashSecret(secret) }
  const publicClient = { token_endpoint_auth_method: 'none' as const }

  t.doesNotThrow(() => authenticateClient({ method: 'client_secret_basic', clientId: 'c', clientSecret: secret }, confidential))
  t.doesNotThrow(() => authenticateClient({ method: 'client_secret_post', clientId: 'c', clientSecret: secret }, confidential),
    'the same secret in the body also proves it')
  t.doesNotThrow(() => authenticateClient({ method: 'none', clientId: 'c' }, publicClient))

  t.throws(() => authenticateClient({ method: 'client_secret_basic', clientId: 'c', clientSecret: secret + 'x' }, confidential),
    { code: 'invalid_client', statusCode: 401, message: 'client authentication failed', headers: { 'www-authenticate': /^Basic / } })
  t.throws(() => authenticateClient({ method: 'client_secret_post', clientId: 'c', clientSecret: 'wrong' }, confidential),
    { code: 'invalid_client', message: 'client authentication failed', headers: {} }, 'no Basic challenge for a body secret')
  t.throws(() => authenticateClient({ method: 'none', clientId: 'c' }, confidential),
    { code: 'invalid_client', message: /confidential/ })
  t.throws(() => authenticateClient({ method: 'client_secret_post', clientId: 'c', clientSecret: secret }, publicClient),
    { code: 'invalid_client', message: /public/ })
  t.throws(() => authenticateClient({ method: 'none', clientId: 'c' }, undefined),
    { code: 'invalid_client', message: 'unknown client' })
  t.throws(() => authenticateClient({ method: 'client_secret_post', clientId: 'c', clientSecret: secret },
    { token_endpoint_auth_method: 'client_secret_post' }), { code: 'invalid_client' }, 'a confidential client with no stored hash never authenticates')
})

t.test('private_key_jwt: the assertion names the client; it cannot be mixed with a secret or claimed by a secret', async t => {
  const TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
  // Only parsed here (its signature is checked by verifyClientAssertion): header.payload.signature.
  const jwt = (payload: object): string => ['{"alg":"ES256"}', JSON.stringify(payload)].map(p => Buffer.from(p).toString('base64url')).join('.') + '.sig'
  const assertion = jwt({ iss: 'bot', sub: 'bot' })
  t.same(parseClientAuthentication(undefined, { client_assertion_type: TYPE, client_assertion: assertion }), { method: 'private_key_jwt', clientId: 'bot', assertion })
  t.same(parseClientAuthentication(undefined, { client_id: 'bot', client_assertion_type: TYPE, client_assertion: assertion }).clientId, 'bot')
  const cases: Array<[string | undefined, Record<string, string>, string, RegExp]> = [
    [undefined, { client_id: 'other', client_assertion_type: TYPE, client_assertion: assertion }, 'invalid_client', /differs from the client assertion/],
    [undefined, { client_assertion_type: 'urn:other', client_assertion: assertion }, 'invalid_client', /client_assertion_type must be/],
    [undefined, { client_assertion_type: TYPE }, 'invalid_client', /client_assertion is required/],
    [undefined, { client_assertion_type: TYPE, client_assertion: 'nope' }, 'invalid_client', /not a JWT/],
    [undefined, { client_assertion_type: TYPE, client_assertion: jwt({ iss: 'bot' }) }, 'invalid_client', /name the client in sub/],
    [basic('bot', 's'), { client_assertion_type: TYPE, client_assertion: assertion }, 'invalid_request', /not both/],
    [undefined, { client_secret: 's', client_id: 'bot', client_assertion_type: TYPE, client_assertion: assertion }, 'invalid_request', /not both/]
  ]
  for (const [header, body, code, message] of cases) t.throws(() => parseClientAuthentication(header, body), { code, message }, JSON.stringify(body).slice(0, 80))

  const keyClient = { token_endpoint_auth_method: 'private_key_jwt' as const }
  t.throws(() => authenticateClient({ method: 'client_secret_post', clientId: 'bot', clientSecret: 's' }, keyClient), { code: 'invalid_client' }, 'a key client cannot use a secret')
  t.throws(() => authenticateClient({ method: 'private_key_jwt', clientId: 'bot', assertion }, { token_endpoint_auth_method: 'client_secret_basic', client_secret_hash: hashSecret('s') }), { code: 'invalid_client' }, 'a secret client cannot use an assertion')
  t.throws(() => authenticateClient({ method: 'private_key_jwt', clientId: 'bot', assertion }, { token_endpoint_auth_method: 'none' }), { code: 'invalid_client' }, 'nor a public one')
  t.doesNotThrow(() => authenticateClient({ method: 'private_key_jwt', clientId: 'bot', assertion }, keyClient), 'the method matches; the signature is checked next')
})
