import t from 'tap'
import { parseTokenRequest } from '../../src/oauth/token-request.js'

const codeBody = {
  grant_type: 'authorization_code',
  code: 'code-1',
  redirect_uri: 'http://127.0.0.1:5000/cb',
  code_verifier: 'v'.repeat(43),
  client_id: 'client-1'
}

t.test('authorization_code', async t => {
  t.same(parseTokenRequest({ ...codeBody, resource: 'https://gw.example.com/calc/mcp' }, undefined), {
    grantType: 'authorization_code',
    client: { method: 'none', clientId: 'client-1' },
    code: 'code-1',
    redirectUri: 'http://127.0.0.1:5000/cb',
    codeVerifier: 'v'.repeat(43),
    resource: 'https://gw.example.com/calc/mcp'
  })
  const basic = 'Basic ' + Buffer.from('client-1:s3cret').toString('base64')
  const { client_id: _omitted, ...withoutId } = codeBody
  t.match(parseTokenRequest(withoutId, basic), { client: { method: 'client_secret_basic', clientId: 'client-1', clientSecret: 's3cret' } })
  t.same(parseTokenRequest({ ...codeBody, resource: ['a', 'b'] }, undefined).resource, ['a', 'b'], 'several resources are left to resolveResource')

  for (const name of ['code', 'redirect_uri', 'code_verifier'] as const) {
    t.throws(() => parseTokenRequest({ ...codeBody, [name]: undefined }, undefined),
      { code: 'invalid_request', statusCode: 400, message: `${name} is required` }, `missing ${name}`)
    t.throws(() => parseTokenRequest({ ...codeBody, [name]: '' }, undefined),
      { code: 'invalid_request', message: `${name} is required` }, `empty ${name}`)
    t.throws(() => parseTokenRequest({ ...codeBody, [name]: ['a', 'b'] }, undefined),
      { code: 'invalid_request', message: `${name} must not be repeated` }, `repeated ${name}`)
  }
})

t.test('refresh_token', async t => {
  t.same(parseTokenRequest({ grant_type: 'refresh_token', refresh_token: 'rt', client_id: 'client-1', scope: 'mcp:tools' }, undefined), {
    grantType: 'refresh_token',
    client: { method: 'none', clientId: 'client-1' },
    refreshToken: 'rt',
    scopes: ['mcp:tools'],
    resource: undefined
  })
  t.match(parseTokenRequest({ grant_type: 'refresh_token', refresh_token: 'rt', client_id: 'c' }, undefined), { scopes: [] }, 'no scope: keep the grant')
  t.throws(() => parseTokenRequest({ grant_type: 'refresh_token', client_id: 'c' }, undefined),
    { code: 'invalid_request', message: 'refresh_token is required' })
  t.throws(() => parseTokenRequest({ grant_type: 'refresh_token', refresh_token: 'rt', client_id: 'c', scope: 'a "b"' }, undefined),
    { code: 'invalid_scope' })
})

t.test('grant type and client errors', async t => {
  t.throws(() => parseTokenRequest({ client_id: 'c' }, undefined), { code: 'invalid_request', message: 'grant_type is required' })
  t.throws(() => parseTokenRequest({ grant_type: 'password', client_id: 'c', username: 'u', password: 'p' }, undefined),
    { code: 'unsupported_grant_type', statusCode: 400, message: /password is not supported/ })
  t.match(parseTokenRequest({ grant_type: 'client_credentials', client_id: 'c', client_secret: 's', scope: 'mcp openid', resource: 'https://gw/calc/mcp' }, undefined),
    { grantType: 'client_credentials', scopes: ['mcp', 'openid'], resource: 'https://gw/calc/mcp' })
  t.throws(() => parseTokenRequest({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', client_id: 'c', client_secret: 's' }, undefined),
    { code: 'invalid_request', message: 'assertion is required' })
  t.throws(() => parseTokenRequest({ grant_type: ['authorization_code', 'refresh_token'], client_id: 'c' }, undefined),
    { code: 'invalid_request', message: 'grant_type must not be repeated' })
  t.throws(() => parseTokenRequest({ ...codeBody, client_id: undefined }, undefined),
    { code: 'invalid_client', statusCode: 401 })
  t.throws(() => parseTokenRequest({ ...codeBody, client_secret: 'x' }, 'Basic ' + Buffer.from('client-1:x').toString('base64')),
    { code: 'invalid_request', message: /not both/ })
})
