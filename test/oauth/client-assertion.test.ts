import t from 'tap'
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { MAX_ASSERTION_LIFETIME, verifyClientAssertion } from '../../src/oauth/client-assertion.js'

const NOW = 1_800_000_000
const AS = 'https://gw.example.com'

t.test('RFC 7523 client assertions: each rule refuses with its reason', async t => {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const keys = createLocalJWKSet({ keys: [await exportJWK(publicKey)] })
  const expect = { clientId: 'bot', audiences: [AS, `${AS}/oauth/token`], keys, now: NOW }
  const sign = async (claims: Record<string, unknown> = {}, alg = 'ES256', key: Parameters<SignJWT['sign']>[0] = privateKey): Promise<string> =>
    await new SignJWT({ iss: 'bot', sub: 'bot', aud: AS, exp: NOW + 60, jti: 'j-1', ...claims }).setProtectedHeader({ alg }).sign(key)

  t.same(await verifyClientAssertion(await sign(), expect), { jti: 'j-1', exp: NOW + 60 })
  t.same(await verifyClientAssertion(await sign({ aud: `${AS}/oauth/token` }), expect), { jti: 'j-1', exp: NOW + 60 }, 'the token endpoint as aud')
  const cases: Array<[string, Promise<string>, RegExp]> = [
    ['expired', sign({ exp: NOW - 120 }), /expired/],
    ['too long-lived', sign({ exp: NOW + MAX_ASSERTION_LIFETIME + 120 }), /within 300 seconds/],
    ['wrong aud', sign({ aud: 'https://other.example' }), /aud claim/],
    ['iss not the client', sign({ iss: 'other' }), /iss claim/],
    ['sub not the client', sign({ sub: 'other' }), /sub claim/],
    ['no jti', sign({ jti: undefined }), /jti claim/],
    ['shared-secret alg', sign({}, 'HS256', new TextEncoder().encode('k'.repeat(32))), /signature does not verify/],
    ['another key', generateKeyPair('ES256').then(async other => await sign({}, 'ES256', other.privateKey)), /signature does not verify/]
  ]
  for (const [name, jwt, reason] of cases) {
    await t.rejects(verifyClientAssertion(await jwt, expect), { code: 'invalid_client', statusCode: 401, message: reason, description: 'client authentication failed' }, name)
  }
})
