import t from 'tap'
import { checkAllowLists } from '../../src/oauth/allow-list.js'

const none = { emails: [], domains: [] }
const ana = { sub: '1', email: 'Ana@Example.com', emailVerified: true }

t.test('no lists admit every verified email, lower-cased', async t => {
  t.same(checkAllowLists(ana, none, none), { allowed: true, email: 'ana@example.com' })
})

t.test('unverified or missing emails never pass, whatever the lists say', async t => {
  t.equal(checkAllowLists({ ...ana, emailVerified: false }, { emails: ['ana@example.com'], domains: [] }, none).allowed, false)
  t.equal(checkAllowLists({ sub: '1', emailVerified: true }, none, none).allowed, false)
})

t.test('global and route lists must both admit the user', async t => {
  const global = { emails: [], domains: ['example.com'] }
  t.equal(checkAllowLists(ana, global, none).allowed, true)
  t.equal(checkAllowLists(ana, global, { emails: ['bob@example.com'], domains: [] }).allowed, false)
  t.equal(checkAllowLists(ana, global, { emails: ['ana@example.com'], domains: [] }).allowed, true)
  t.equal(checkAllowLists({ ...ana, email: 'eve@evil.example' }, global, none).allowed, false)
})

t.test("Google's hd claim counts as a verified domain", async t => {
  const user = { sub: '2', email: 'ana@alias.example', emailVerified: true, hostedDomain: 'corp.example' }
  t.equal(checkAllowLists(user, { emails: [], domains: ['corp.example'] }, none).allowed, true)
  t.equal(checkAllowLists({ ...user, hostedDomain: undefined }, { emails: [], domains: ['corp.example'] }, none).allowed, false)
})
