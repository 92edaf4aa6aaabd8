import t from 'tap'
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { verifyIdJag } from '../../src/oauth/id-jag.js'

const NOW = 1_800_000_000
const AS = 'https://gw.example.com'
const IDP = 'https://idp.example.com'

t.test('ID-JAG rules: typ, trusted issuer, aud, client_id, claims; each refusal is invalid_grant', async t => {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const idp = { issuer: IDP, keys: createLocalJWKSet({ keys: [await exportJWK(publicKey)] }), claims: { tenant: ['acme'] } }
  const expect = { audience: AS, clientId: 'agent', trusted: (iss: string) => iss === IDP ? idp : undefined, now: NOW }
  const sign = async (claims: Record<string, unknown> = {}, typ = 'oauth-id-jag+jwt'): Promise<string> =>
    await new SignJWT({ iss: IDP, sub: 'u-1', aud: AS, client_id: 'agent', resource: `${AS}/calc/mcp`, tenant: 'acme', email: 'ana@acme.example', scope: 'mcp  calc.read', exp: NOW + 300, jti: 'j-1', ...claims })
      .setProtectedHeader({ alg: 'ES256', typ }).sign(privateKey)

  t.same(await verifyIdJag(await sign(), expect), {
    iss: IDP, sub: 'u-1', resource: `${AS}/calc/mcp`, scopes: ['mcp', 'calc.read'], email: 'ana@acme.example', emailVerified: true, jti: 'j-1', exp: NOW + 300
  })
  t.equal((await verifyIdJag(await sign({ scope: undefined, email_verified: false }), expect)).scopes, undefined, 'no scope claim: not narrowed')
  const cases: Array<[string, Promise<string>, RegExp]> = [
    ['typ JWT', sign({}, 'JWT'), /typ/],
    ['untrusted issuer', sign({ iss: 'https://evil.example' }), /not a trusted identity provider/],
    ['wrong aud', sign({ aud: 'https://other.example' }), /aud claim/],
    ['another client', sign({ client_id: 'other' }), /another client/],
    ['no resource', sign({ resource: undefined }), /resource claim/],
    ['expired', sign({ exp: NOW - 120 }), /expired/],
    ['too long-lived', sign({ exp: NOW + 7200 }), /within 600 seconds/],
    ['claim rule', sign({ tenant: 'globex' }), /tenant claim/],
    ['not a JWT', Promise.resolve('x.y'), /not a JWT/]
  ]
  for (const [name, jwt, reason] of cases) {
    await t.rejects(verifyIdJag(await jwt, expect), { code: 'invalid_grant', message: reason }, name)
  }
})
