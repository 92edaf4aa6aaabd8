import t from 'tap'
import { OAuthError } from '../../src/oauth/errors.js'
import { KEY_KINDS } from '../../src/store/storage-schema.js'
import { CLIENT, codeGrant, grantFixture, redeem } from './grant-fixture.js'

const invalidGrant = (message: RegExp): { code: string, message: RegExp } => ({ code: 'invalid_grant', message })

t.test('a code is redeemed once for an access token and a refresh token', async t => {
  const { grants, check } = grantFixture()
  const code = await grants.issueCode(codeGrant())
  const pair = await grants.exchange(CLIENT, { grantType: 'authorization_code', client: { method: 'none', clientId: CLIENT.client_id }, ...redeem(code) })
  t.equal(pair.token_type, 'Bearer')
  t.equal(pair.scope, 'mcp')
  t.equal(pair.expires_in, 3600, 'expires_in counted on the injected clock')
  t.match(pair.refresh_token, /^[^.]+\.[^.]+$/)
  t.equal(check(pair.access_token), 'ok')
  t.equal(check(pair.access_token, '/files/mcp'), 'wrong_audience', 'bound to its route (RFC 8707)')
})

t.test('a replayed code fails and revokes everything the code issued', async t => {
  const { grants, check } = grantFixture()
  const code = await grants.issueCode(codeGrant())
  const pair = await grants.redeemCode(CLIENT, redeem(code))
  await t.rejects(grants.redeemCode(CLIENT, redeem(code)), invalidGrant(/already used/))
  t.equal(check(pair.access_token), 'revoked', 'its access token')
  await t.rejects(grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [] }), invalidGrant(/revoked/), 'and its refresh family')
})

t.test('a code expires after five minutes of the clock', async t => {
  const { grants, clock } = grantFixture()
  const code = await grants.issueCode(codeGrant())
  clock.advance(301_000)
  await t.rejects(grants.redeemCode(CLIENT, redeem(code)), invalidGrant(/unknown or expired/))
})

t.test('a code is bound to its client, redirect URI, verifier and route', async t => {
  const { grants } = grantFixture()
  const other = { ...CLIENT, client_id: 'client-2' }
  await t.rejects(grants.redeemCode(other, redeem(await grants.issueCode(codeGrant()))), invalidGrant(/another client/))
  await t.rejects(grants.redeemCode(CLIENT, { ...redeem(await grants.issueCode(codeGrant())), redirectUri: 'http://127.0.0.1:9999/other' }), invalidGrant(/redirect_uri/))
  await t.rejects(grants.redeemCode(CLIENT, { ...redeem(await grants.issueCode(codeGrant())), codeVerifier: 'w'.repeat(43) }), { code: 'invalid_grant' })
  await t.rejects(grants.redeemCode(CLIENT, redeem(await grants.issueCode(codeGrant()), 'https://gw.example/files/mcp')), { code: 'invalid_target' }, 'a resource may not widen the grant')
})

t.test('rotation: each refresh gives a new pair; the old token is refused', async t => {
  const { grants, clock, check } = grantFixture()
  const first = await grants.redeemCode(CLIENT, redeem(await grants.issueCode(codeGrant())))
  const second = await grants.refresh(CLIENT, { refreshToken: first.refresh_token as string, scopes: [] })
  t.not(second.refresh_token, first.refresh_token)
  t.equal(check(second.access_token), 'ok')
  clock.advance(60_000)
  const third = await grants.refresh(CLIENT, { refreshToken: second.refresh_token as string, scopes: [] })
  t.equal(check(third.access_token), 'ok')
})

t.test('grace window: a duplicate refresh within it gets the same pair, not a third', async t => {
  const { grants, clock } = grantFixture()
  const first = await grants.redeemCode(CLIENT, redeem(await grants.issueCode(codeGrant())))
  const request = { refreshToken: first.refresh_token as string, scopes: [] }
  const second = await grants.refresh(CLIENT, request)
  clock.advance(9_000)
  t.same(await grants.refresh(CLIENT, request), second, 'the same new pair, replayed')
})

t.test('reuse after the grace window revokes the whole family', async t => {
  const { grants, clock, check } = grantFixture()
  const first = await grants.redeemCode(CLIENT, redeem(await grants.issueCode(codeGrant())))
  const second = await grants.refresh(CLIENT, { refreshToken: first.refresh_token as string, scopes: [] })
  clock.advance(10_001)
  await t.rejects(grants.refresh(CLIENT, { refreshToken: first.refresh_token as string, scopes: [] }), invalidGrant(/already used/))
  t.equal(check(first.access_token), 'revoked', 'the family\'s first access token')
  t.equal(check(second.access_token), 'revoked', 'and its latest')
  await t.rejects(grants.refresh(CLIENT, { refreshToken: second.refresh_token as string, scopes: [] }), invalidGrant(/revoked/), 'the live refresh token too')
})

t.test('a family ends at its absolute lifetime however often it rotates', async t => {
  const { grants, clock } = grantFixture({ REFRESH_TOKEN_MAX_LIFETIME: '3600', REFRESH_TOKEN_TTL: '1800' })
  let pair = await grants.redeemCode(CLIENT, redeem(await grants.issueCode(codeGrant())))
  for (let i = 0; i < 3; i++) {
    clock.advance(1_000_000)
    pair = await grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [] })
  }
  clock.advance(700_000)
  await t.rejects(grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [] }), { code: 'invalid_grant' })
})

t.test('an unused family expires with its sliding TTL', async t => {
  const { grants, clock } = grantFixture({ REFRESH_TOKEN_TTL: '1800' })
  const pair = await grants.redeemCode(CLIENT, redeem(await grants.issueCode(codeGrant())))
  clock.advance(1_801_000)
  await t.rejects(grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [] }), invalidGrant(/unknown or expired/))
})

t.test('the allow-lists are checked again at every refresh', async t => {
  const allowed = grantFixture({ ALLOWED_EMAILS: 'ana@example.com' })
  const pair = await allowed.grants.redeemCode(CLIENT, redeem(await allowed.grants.issueCode(codeGrant())))
  t.ok(pair.refresh_token)
  // The same stored family seen by a configuration that no longer lists her.
  const removed = grantFixture({ ALLOWED_EMAILS: 'bo@example.com' }, allowed.deps.store)
  await t.rejects(removed.grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [] }), { code: 'invalid_grant' })
  await t.rejects(allowed.grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [] }), invalidGrant(/revoked/), 'revoked for good')
})

t.test('a refresh may narrow the scopes and name the grant\'s route, never another', async t => {
  const { grants } = grantFixture()
  const pair = await grants.redeemCode(CLIENT, redeem(await grants.issueCode(codeGrant())))
  await t.rejects(grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [], resource: 'https://gw.example/files/mcp' }), { code: 'invalid_target' })
  const same = await grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [], resource: 'HTTPS://GW.EXAMPLE/calc/mcp/' })
  t.equal(same.scope, 'mcp')
})

t.test('a corrupt family in the store is an unknown refresh token, logged, never a crash', async t => {
  const { grants, deps, log } = grantFixture()
  const pair = await grants.redeemCode(CLIENT, redeem(await grants.issueCode(codeGrant())))
  const familyId = (pair.refresh_token as string).split('.')[0]
  await deps.store.set(deps.records.key(KEY_KINDS.family, familyId), '{"familyId":42}', 60)
  const err = await grants.refresh(CLIENT, { refreshToken: pair.refresh_token as string, scopes: [] }).catch((e: unknown) => e)
  t.type(err, OAuthError)
  t.match(err, invalidGrant(/unknown or expired/))
  t.match(log.lines, [/stored family record ignored: does not match its schema/])
})
