import t from 'tap'
import { randomBytes } from 'node:crypto'
import { seal, unseal } from '../../src/oauth/sealed.js'

const key = randomBytes(32)

t.test('what is sealed opens with the same key and context only', async t => {
  const sealed = seal(key, 'refresh-token-value', 'upstream-tokens')
  t.notMatch(sealed, /refresh-token-value/)
  t.not(seal(key, 'refresh-token-value', 'upstream-tokens'), sealed, 'a fresh IV each time')
  t.equal(unseal(key, sealed, 'upstream-tokens'), 'refresh-token-value')
  t.throws(() => unseal(key, sealed, 'refresh-grace'), 'another context')
  t.throws(() => unseal(randomBytes(32), sealed, 'upstream-tokens'), 'another key')
  const tampered = Buffer.from(sealed, 'base64url')
  tampered[tampered.length - 1] ^= 1
  t.throws(() => unseal(key, tampered.toString('base64url'), 'upstream-tokens'), 'altered')
  t.throws(() => unseal(key, 'AAAA', 'upstream-tokens'), 'truncated')
})
