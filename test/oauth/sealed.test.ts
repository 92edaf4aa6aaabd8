import t from 'tap'
import { createCipheriv, randomBytes } from 'node:crypto'
import { Sealer } from '../../src/oauth/sealed.js'
import { parseEncryptionKeys } from '../../src/keys/key-parsing.js'

const key = randomBytes(32)

t.test('what is sealed opens with the same key and context only', async t => {
  const sealer = new Sealer([key])
  const sealed = sealer.seal('refresh-token-value', 'upstream-tokens')
  t.notMatch(sealed, /refresh-token-value/)
  t.not(sealer.seal('refresh-token-value', 'upstream-tokens'), sealed, 'a fresh IV each time')
  t.equal(sealer.open(sealed, 'upstream-tokens'), 'refresh-token-value')
  t.equal(sealer.open(sealed, 'refresh-grace'), undefined, 'another context')
  t.equal(new Sealer([randomBytes(32)]).open(sealed, 'upstream-tokens'), undefined, 'another key')
  const [id, body] = sealed.split('.')
  const tampered = Buffer.from(body, 'base64url')
  tampered[tampered.length - 1] ^= 1
  t.equal(sealer.open(`${id}.${tampered.toString('base64url')}`, 'upstream-tokens'), undefined, 'altered')
  t.equal(sealer.open('AAAA', 'upstream-tokens'), undefined, 'truncated')
})

t.test('ENCRYPTION_KEY rotation: the first key seals, every key opens', async t => {
  const old = randomBytes(32)
  const fresh = randomBytes(32)
  const before = new Sealer([old]).seal('held', 'upstream-tokens')
  const rotated = new Sealer([fresh, old])
  t.equal(rotated.open(before, 'upstream-tokens'), 'held', 'a value sealed with the old key still opens')
  const after = rotated.seal('new', 'upstream-tokens')
  t.equal(new Sealer([fresh]).open(after, 'upstream-tokens'), 'new', 'new values are sealed with the first key')
  t.equal(new Sealer([old]).open(after, 'upstream-tokens'), undefined, 'which the old key alone cannot open')
  t.equal(new Sealer([fresh]).open(before, 'upstream-tokens'), undefined, 'the old key removed: its values read as absent, no throw')
})

t.test('values sealed before key ids existed still open', async t => {
  // The previous format: base64url(iv ‖ tag ‖ ciphertext), no key id.
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from('upstream-tokens'))
  const body = Buffer.concat([cipher.update('legacy', 'utf8'), cipher.final()])
  const legacy = Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
  t.equal(new Sealer([randomBytes(32), key]).open(legacy, 'upstream-tokens'), 'legacy', 'tried with each configured key')
})

t.test('ENCRYPTION_KEY is one key or several, comma-separated, each 32 bytes; a bad one names its place', async t => {
  const a = randomBytes(32).toString('base64')
  const b = randomBytes(32).toString('base64')
  t.same(parseEncryptionKeys(a).map(k => k.toString('base64')), [a])
  t.same(parseEncryptionKeys(`${a}, ${b}`).map(k => k.toString('base64')), [a, b], 'spaces around commas are fine')
  t.throws(() => parseEncryptionKeys(`${a},c2hvcnQ=`), { message: /ENCRYPTION_KEY.*key 2 must be 32 bytes/ })
  t.throws(() => parseEncryptionKeys(' , '), { message: /ENCRYPTION_KEY.*holds no key/ })
})
