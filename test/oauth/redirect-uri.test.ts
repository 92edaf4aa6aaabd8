import t from 'tap'
import {
  isLoopbackUri,
  matchRedirectUri,
  validateRedirectUriForRegistration
} from '../../src/oauth/redirect-uri.js'

t.test('registration accepts https, loopback http and private-use schemes', async t => {
  for (const uri of [
    'https://app.example.com/oauth/callback',
    'https://app.example.com/cb?tenant=a',
    'http://127.0.0.1/callback',
    'http://127.0.0.1:33418/callback',
    'http://[::1]:8080/cb',
    'http://localhost:6274/oauth/callback',
    'cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback',
    'vscode://vscode.github-authentication/did-authenticate',
    'com.example.app:/oauth2redirect'
  ]) {
    t.equal(validateRedirectUriForRegistration(uri), uri, uri)
  }
})

t.test('registration refuses what could leak a code or run script', async t => {
  const cases: Array<[unknown, RegExp]> = [
    ['http://app.example.com/cb', /http is only allowed on loopback/],
    ['http://10.0.0.5/cb', /http is only allowed on loopback/],
    ['http://localhost.evil.example/cb', /http is only allowed on loopback/],
    ['http://127.0.0.1@evil.example/cb', /credentials/],
    ['https://user:pw@app.example.com/cb', /credentials/],
    ['https://app.example.com/cb#frag', /fragment/],
    ['https://app.example.com/cb#', /fragment/],
    ['javascript:alert(1)', /javascript: scheme is not allowed/],
    ['JavaScript:alert(1)', /javascript: scheme is not allowed/],
    ['data:text/html,<script>alert(1)</script>', /data: scheme/],
    ['file:///etc/passwd', /file: scheme/],
    ['/relative/callback', /not an absolute URI/],
    ['', /non-empty strings/],
    [42, /non-empty strings/],
    ['https://app.example.com/' + 'a'.repeat(2000), /longer than/]
  ]
  for (const [uri, message] of cases) {
    t.throws(() => validateRedirectUriForRegistration(uri),
      { code: 'invalid_redirect_uri', statusCode: 400, message }, String(uri).slice(0, 60))
  }
})

t.test('matchRedirectUri: exact match', async t => {
  const registered = ['https://app.example.com/cb', 'cursor://anysphere.cursor-retrieval/cb']
  t.equal(matchRedirectUri('https://app.example.com/cb', registered), 'https://app.example.com/cb')
  t.equal(matchRedirectUri('cursor://anysphere.cursor-retrieval/cb', registered), 'cursor://anysphere.cursor-retrieval/cb')
  for (const attempt of [
    'https://app.example.com/cb/',
    'https://app.example.com/cb?x=1',
    'https://app.example.com/CB',
    'https://APP.example.com/cb',
    'https://app.example.com:443/cb',
    'https://app.example.com/cb#x',
    'https://app.example.com/cb/../cb',
    'https://app.example.com.evil.example/cb',
    'https://evil.example/cb',
    'https://app.example.com:8443/cb'
  ]) {
    t.equal(matchRedirectUri(attempt, registered), undefined, `refused: ${attempt}`)
  }
})

t.test('matchRedirectUri: loopback port may differ, nothing else', async t => {
  const registered = ['http://127.0.0.1/callback', 'http://localhost:3000/oauth/callback', 'http://[::1]:1/cb']
  t.equal(matchRedirectUri('http://127.0.0.1:51234/callback', registered), 'http://127.0.0.1/callback')
  t.equal(matchRedirectUri('http://127.0.0.1/callback', registered), 'http://127.0.0.1/callback')
  t.equal(matchRedirectUri('http://localhost:6274/oauth/callback', registered), 'http://localhost:3000/oauth/callback')
  t.equal(matchRedirectUri('http://[::1]:9/cb', registered), 'http://[::1]:1/cb')
  for (const attempt of [
    'http://127.0.0.1:51234/callback2',
    'http://127.0.0.1:51234/callback?x=1',
    'http://localhost:51234/callback', // registered on 127.0.0.1, not localhost
    'http://127.0.0.1:51234@evil.example/callback',
    'https://127.0.0.1:51234/callback',
    'http://127.0.0.2:51234/callback'
  ]) {
    t.equal(matchRedirectUri(attempt, registered), undefined, `refused: ${attempt}`)
  }
  t.equal(matchRedirectUri('https://app.example.com:8443/cb', ['https://app.example.com/cb']), undefined,
    'port freedom is for loopback only')
})

t.test('isLoopbackUri', async t => {
  for (const uri of ['http://127.0.0.1:1/cb', 'http://localhost/cb', 'http://[::1]/cb', 'https://localhost/cb']) {
    t.equal(isLoopbackUri(uri), true, uri)
  }
  for (const uri of ['https://app.example.com/cb', 'cursor://anysphere.cursor-retrieval/cb', 'http://localhost.example.com/cb', 'not a uri']) {
    t.equal(isLoopbackUri(uri), false, uri)
  }
})
