import t from 'tap'
import { s256, validateCodeChallenge, verifyPkce } from '../../src/oauth/pkce.js'
import { randomToken } from '../../src/oauth/secrets.js'

// RFC 7636 Appendix B.
const RFC_VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
const RFC_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'

t.test('S256 transform matches the RFC 7636 example', async t => {
  t.equal(s256(RFC_VERIFIER), RFC_CHALLENGE)
})

t.test('validateCodeChallenge', async t => {
  t.equal(validateCodeChallenge(RFC_CHALLENGE, 'S256'), RFC_CHALLENGE)

  const cases: Array<[string, unknown, unknown, RegExp]> = [
    ['missing challenge', undefined, 'S256', /code_challenge is required/],
    ['missing method (would default to plain)', RFC_CHALLENGE, undefined, /code_challenge_method is required/],
    ['plain', RFC_CHALLENGE, 'plain', /must be S256/],
    ['lower-case s256', RFC_CHALLENGE, 's256', /must be S256/],
    ['too short', RFC_CHALLENGE.slice(0, 42), 'S256', /43-character base64url/],
    ['padded', RFC_CHALLENGE + '=', 'S256', /43-character base64url/],
    ['standard base64 alphabet', RFC_CHALLENGE.slice(0, 42) + '+', 'S256', /43-character base64url/],
    ['repeated parameter', [RFC_CHALLENGE, RFC_CHALLENGE], 'S256', /43-character base64url/]
  ]
  for (const [name, challenge, method, description] of cases) {
    t.throws(() => validateCodeChallenge(challenge, method),
      { code: 'invalid_request', message: description, statusCode: 400 }, name)
  }
})

t.test('verifyPkce', async t => {
  t.doesNotThrow(() => verifyPkce(RFC_VERIFIER, RFC_CHALLENGE), 'RFC example verifies')

  const verifier = randomToken(64) // 86 chars
  t.doesNotThrow(() => verifyPkce(verifier, s256(verifier)), 'fresh verifier verifies')

  t.throws(() => verifyPkce(randomToken(32), RFC_CHALLENGE),
    { code: 'invalid_grant', message: /does not match/ }, 'another verifier is a bad grant')
  t.throws(() => verifyPkce(RFC_CHALLENGE, RFC_CHALLENGE),
    { code: 'invalid_grant' }, 'sending the challenge as the verifier fails')
  t.throws(() => verifyPkce(undefined, RFC_CHALLENGE), { code: 'invalid_request', message: /required/ })
  t.throws(() => verifyPkce('a'.repeat(42), s256('a'.repeat(42))),
    { code: 'invalid_request', message: /43-128/ }, 'too short even when it matches')
  t.throws(() => verifyPkce('a'.repeat(129), s256('a'.repeat(129))),
    { code: 'invalid_request', message: /43-128/ }, 'too long even when it matches')
  const bad = 'a'.repeat(42) + '/'
  t.throws(() => verifyPkce(bad, s256(bad)), { code: 'invalid_request' }, 'character outside the unreserved set')
})
