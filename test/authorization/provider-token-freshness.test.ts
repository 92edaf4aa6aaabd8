import t from 'tap'
import { freshUntil, refreshMargin } from '../../src/authorization/provider-token-freshness.js'

t.test('the refresh margin is the smaller of 60 s and a third of the token\'s lifetime', async t => {
  t.equal(refreshMargin({ access_token: 'a', obtained_at: 1000, expires_at: 4600 }), 60, 'an hour-long token: 60 s early')
  t.equal(refreshMargin({ access_token: 'a', obtained_at: 1000, expires_at: 1010 }), 10 / 3, 'a 10 s token: a third of it')
  t.equal(refreshMargin({ access_token: 'a', expires_at: 1010 }), 60, 'unknown lifetime (an older record): 60 s')
})

t.test('a token just obtained is fresh, however short-lived', async t => {
  for (const lifetime of [3, 10, 64, 3600]) {
    const tokens = { access_token: 'a', obtained_at: 1000, expires_at: 1000 + lifetime }
    t.ok(freshUntil(tokens) > 1000, `${lifetime} s token fresh on arrival`)
    t.ok(freshUntil(tokens) < 1000 + lifetime, 'and stale before it expires')
  }
  t.equal(freshUntil({ access_token: 'a' }), Infinity, 'a token without expiry never needs a refresh')
})
