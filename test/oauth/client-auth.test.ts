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
