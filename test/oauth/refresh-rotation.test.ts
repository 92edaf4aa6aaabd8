import t from 'tap'
import { decideRefresh, DEFAULT_GRACE_MS, familyTtl, type RefreshFamily, revokeFamily, rotateFamily } from '../../src/oauth/refresh-rotation.js'
import { hashSecret, randomToken } from '../../src/oauth/secrets.js'

const T0 = 1_700_000_000_000

/** A family whose first token was issued, then rotated once at T0. */
function rotatedOnce (): { family: RefreshFamily, first: string, second: string } {
  const first = randomToken(32)
  const second = randomToken(32)
  const fresh: RefreshFamily = { familyId: 'fam-1', currentHash: hashSecret(first) }
  return { family: rotateFamily(fresh, hashSecret(second), 'encrypted-pair-2', T0), first, second }
}

t.test('the current token rotates', async t => {
  const token = randomToken(32)
  t.same(decideRefresh({ familyId: 'f', currentHash: hashSecret(token) }, hashSecret(token), T0), { action: 'rotate' }, 'a new family')
  const { family, second } = rotatedOnce()
  t.same(decideRefresh(family, hashSecret(second), T0 + 60_000), { action: 'rotate' })
  const third = randomToken(32)
  const next = rotateFamily(family, hashSecret(third), 'encrypted-pair-3', T0 + 60_000)
  t.same(next.previous, { hash: hashSecret(second), rotatedAt: T0 + 60_000, result: 'encrypted-pair-3' })
  t.equal(next.familyId, 'fam-1')
  t.same(decideRefresh(next, hashSecret(third), T0 + 61_000), { action: 'rotate' })
})

t.test('a concurrent duplicate inside the grace window gets the same new pair', async t => {
  const { family, first } = rotatedOnce()
  t.same(decideRefresh(family, hashSecret(first), T0 + 1), { action: 'replay', result: 'encrypted-pair-2' })
  t.same(decideRefresh(family, hashSecret(first), T0 + DEFAULT_GRACE_MS), { action: 'replay', result: 'encrypted-pair-2' }, 'at the edge')
  t.same(decideRefresh(family, hashSecret(first), T0 + 500, 1000), { action: 'replay', result: 'encrypted-pair-2' }, 'custom window')
})

t.test('reuse after the grace window revokes the family', async t => {
  const { family, first } = rotatedOnce()
  t.match(decideRefresh(family, hashSecret(first), T0 + DEFAULT_GRACE_MS + 1), { action: 'revoke_family', reason: /already used/ })
  t.match(decideRefresh(family, hashSecret(first), T0 + 1001, 1000), { action: 'revoke_family' }, 'custom window')
})

t.test('an older token of the family revokes it', async t => {
  const { family, first, second } = rotatedOnce()
  const third = randomToken(32)
  const twice = rotateFamily(family, hashSecret(third), 'encrypted-pair-3', T0 + 1000)
  t.match(decideRefresh(twice, hashSecret(first), T0 + 1001), { action: 'revoke_family', reason: /rotated out/ },
    'two generations back, even inside the window')
  t.same(decideRefresh(twice, hashSecret(second), T0 + 1001), { action: 'replay', result: 'encrypted-pair-3' })
  t.match(decideRefresh(twice, hashSecret(randomToken(32)), T0 + 1001), { action: 'revoke_family' }, 'never issued in this family')
})

t.test('a revoked or unknown family rejects every token', async t => {
  const { family, second } = rotatedOnce()
  const revoked = revokeFamily(family)
  t.equal(revoked.previous, undefined, 'the stored pair is dropped on revocation')
  t.match(decideRefresh(revoked, hashSecret(second), T0 + 1), { action: 'reject', reason: /revoked/ }, 'even the current one')
  t.match(decideRefresh(undefined, hashSecret(second), T0), { action: 'reject', reason: /unknown or expired/ })
})

t.test('past its absolute lifetime, or of unknown age, a family is revoked whatever is presented', async t => {
  const token = randomToken(32)
  const family: RefreshFamily = { familyId: 'f', currentHash: hashSecret(token), createdAt: T0 }
  const rotated = rotateFamily(family, hashSecret(randomToken(32)), 'pair', T0 + 50_000)
  t.equal(rotated.createdAt, T0, 'rotation keeps the creation time')
  t.equal(revokeFamily(rotated).createdAt, T0)
  t.same(decideRefresh(family, hashSecret(token), T0 + 99_999, DEFAULT_GRACE_MS, 100_000), { action: 'rotate' })
  t.match(decideRefresh(family, hashSecret(token), T0 + 100_000, DEFAULT_GRACE_MS, 100_000), { action: 'revoke_family', reason: /maximum lifetime/ })
  t.match(decideRefresh(rotated, hashSecret(token), T0 + 100_001, 1_000_000, 100_000), { action: 'revoke_family' }, 'no grace replay past it')
  t.match(decideRefresh({ familyId: 'old', currentHash: hashSecret(token) }, hashSecret(token), T0, DEFAULT_GRACE_MS, 100_000),
    { action: 'revoke_family' }, 'a family written without a creation time')
})

t.test('the stored TTL is the sliding one, cut at what is left of the lifetime, never 0', async t => {
  const family: RefreshFamily = { familyId: 'f', currentHash: 'h', createdAt: T0 }
  t.equal(familyTtl(family, T0, 300, 1000), 300)
  t.equal(familyTtl(family, T0 + 800_000, 300, 1000), 200)
  t.equal(familyTtl(family, T0 + 999_500, 300, 1000), 1)
  t.equal(familyTtl(family, T0 + 5_000_000, 300, 1000), 1)
  t.equal(familyTtl({ familyId: 'old', currentHash: 'h' }, T0, 300, 1000), 1)
})
