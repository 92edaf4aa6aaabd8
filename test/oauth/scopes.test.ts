import t from 'tap'
import { formatScope, knownScopes, narrowScopes, parseScope, scopeDifference } from '../../src/oauth/scopes.js'

t.test('parseScope', async t => {
  t.same(parseScope('mcp:tools  mcp:resources mcp:tools'), ['mcp:tools', 'mcp:resources'], 'split, deduplicated')
  t.same(parseScope(undefined), [])
  t.same(parseScope(''), [])
  t.throws(() => parseScope('mcp:tools "quoted"'), { code: 'invalid_scope', message: /malformed scope/ })
  t.throws(() => parseScope('back\\slash'), { code: 'invalid_scope' })
  t.throws(() => parseScope('tab\tseparated'), { code: 'invalid_scope' })
  t.throws(() => parseScope('caf\u00e9'), { code: 'invalid_scope' })
  t.throws(() => parseScope(Array.from({ length: 51 }, (_, i) => `s${i}`).join(' ')),
    { code: 'invalid_scope', message: /more than 50/ })
  t.equal(formatScope(parseScope('a b c')), 'a b c', 'round trip')
})

t.test('knownScopes leaves out what the gateway does not know instead of failing', async t => {
  const supported = ['mcp:tools', 'mcp:resources']
  t.same(knownScopes(['mcp:tools'], supported), ['mcp:tools'])
  t.same(knownScopes(['openid', 'mcp:tools', 'email', 'offline_access', 'profile', 'admin'], supported), ['mcp:tools'])
  t.same(knownScopes(['openid'], supported), [], 'nothing known: the caller falls back to its default')
})

t.test('narrowScopes may narrow, never widen', async t => {
  const granted = ['mcp:tools', 'mcp:resources']
  t.same(narrowScopes([], granted), granted, 'nothing requested keeps the grant')
  t.same(narrowScopes(['mcp:tools'], granted), ['mcp:tools'])
  t.throws(() => narrowScopes(['mcp:tools', 'admin'], granted),
    { code: 'invalid_scope', message: /exceeds what was granted: admin/ })
})

t.test('scopeDifference is what a step-up asks for', async t => {
  t.same(scopeDifference(['a', 'b', 'c'], ['b']), ['a', 'c'])
  t.same(scopeDifference(['a'], ['a', 'b']), [])
})
