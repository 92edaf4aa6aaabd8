import { hkdfSync } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyCookieOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { UpstreamIdentity } from '../oauth/allow-list.js'
import { s256 } from '../oauth/pkce.js'
import { seal, unseal } from '../oauth/sealed.js'
import { hashSecret, randomToken, safeEqual } from '../oauth/secrets.js'
import type { UpstreamTokens } from '../upstream/provider.js'
import { CLIENT_TTL_SECONDS } from './clients.js'

/** A validated authorization request waiting for consent or for the upstream login. */
export interface PendingAuthorization {
  clientId: string
  clientName?: string
  redirectUri: string
  codeChallenge: string
  /** The route's pattern. */
  resource: string
  scopes: string[]
  state?: string
}

export interface UpstreamLoginState {
  pending: PendingAuthorization
  nonce: string
  codeVerifier: string
  /** Hash of the login cookie set in the browser that approved the consent page. */
  browser: string
}

export interface AuthorizationFlow {
  /** @fastify/cookie's options for the authorization server's context (see plugins/oauth-context.ts). */
  cookieOptions: FastifyCookieOptions
  /** Stores the request behind the consent page; the form must come back from this browser. */
  openTransaction: (request: FastifyRequest, reply: FastifyReply, pending: PendingAuthorization) => Promise<{ transactionId: string, csrfToken: string }>
  /** Single use; undefined when unknown, expired, from another browser or with a wrong CSRF token. */
  takeTransaction: (request: FastifyRequest, transactionId: string, csrfToken: string) => Promise<PendingAuthorization | undefined>
  /**
   * The upstream login's state, nonce and PKCE; kept server-side, single use, 10 minutes, and
   * bound to this browser by a cookie of its own.
   */
  startLogin: (reply: FastifyReply, pending: PendingAuthorization) => Promise<{ state: string, nonce: string, codeChallenge: string }>
  /** Single use; undefined when unknown, expired, or when this browser is not the one that started it. */
  finishLogin: (request: FastifyRequest, reply: FastifyReply, state: string) => Promise<UpstreamLoginState | undefined>
  /** Who this browser logged in as, while the gateway session lasts. */
  session: (request: FastifyRequest) => Promise<UpstreamIdentity | undefined>
  /** Opens the session and remembers the user in this browser (for the next login's prompt). */
  openSession: (reply: FastifyReply, identity: UpstreamIdentity) => Promise<void>
  /** The subject who last logged in from this browser, even after the session ended. */
  knownUser: (request: FastifyRequest) => string | undefined
  approvedScopes: (sub: string, clientId: string, resource: string) => Promise<string[]>
  approve: (sub: string, clientId: string, resource: string, scopes: string[]) => Promise<void>
  saveUpstreamTokens: (sub: string, tokens: UpstreamTokens) => Promise<void>
  /** The user's tokens at the identity provider, or null when none are held. */
  upstreamTokens: (sub: string) => Promise<UpstreamTokens | null>
  /** Forgets them (the provider refused to refresh: the user must log in again). */
  dropUpstreamTokens: (sub: string) => Promise<void>
  hasUpstreamRefreshToken: (sub: string) => Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    authorizationFlow: AuthorizationFlow
  }
}

const TRANSACTION_TTL = 600
const LOGIN_TTL = 600
const BROWSER_TTL = 24 * 60 * 60
const UPSTREAM_CONTEXT = 'upstream-tokens'
const LOGIN_CONTEXT = 'upstream-login'

/**
 * The browser side of /oauth/authorize: consent transactions bound to the browser, the upstream
 * login's state, the gateway's login session (a signed cookie naming a server-side record),
 * remembered approvals per (user, client, route), and the user's upstream tokens, encrypted.
 *
 * Cookies carry the `__Host-` prefix and `Secure` when BASE_URL is https; browsers refuse both
 * on plain http, so local http development uses the same names without the prefix.
 */
async function authorizationFlowPlugin (fastify: FastifyInstance): Promise<void> {
  const { env } = fastify.config
  const { store } = fastify
  const key = fastify.keys.encryptionKey
  const secure = env.BASE_URL.startsWith('https:')
  const prefix = secure ? '__Host-' : ''
  const SESSION_COOKIE = `${prefix}mcpgw-session`
  const BROWSER_COOKIE = `${prefix}mcpgw-browser`
  const USER_COOKIE = `${prefix}mcpgw-user`
  // One cookie per login, named after its state, so that logins running at once in one browser
  // (two MCP servers added together) do not overwrite each other's.
  const loginCookie = (state: string): string => `${prefix}mcpgw-login-${hashSecret(state).slice(0, 16)}`

  const readCookie = (request: FastifyRequest, name: string): string | undefined => {
    const raw = request.cookies[name]
    if (raw === undefined) return undefined
    const { valid, value } = request.unsignCookie(raw)
    return valid && value !== null ? value : undefined
  }
  const sessionKey = (id: string): string => `session:${hashSecret(id)}`
  const approvalKey = (sub: string, clientId: string, resource: string): string => `consent:${hashSecret(`${sub}\n${clientId}\n${resource}`)}`

  const flow: AuthorizationFlow = {
    cookieOptions: {
      secret: Buffer.from(hkdfSync('sha256', key, '', 'mcpgw cookies', 32)).toString('base64'),
      parseOptions: { path: '/', httpOnly: true, secure, sameSite: 'lax', signed: true }
    },

    async openTransaction (request, reply, pending) {
      let browser = readCookie(request, BROWSER_COOKIE)
      if (browser === undefined) {
        browser = randomToken(32)
        reply.setCookie(BROWSER_COOKIE, browser, { maxAge: BROWSER_TTL, sameSite: 'strict' })
      }
      const transactionId = randomToken(16)
      const csrfToken = randomToken(32)
      const record = { pending, browser: hashSecret(browser), csrf: hashSecret(csrfToken) }
      await store.set(`authz:${transactionId}`, JSON.stringify(record), TRANSACTION_TTL)
      return { transactionId, csrfToken }
    },

    async takeTransaction (request, transactionId, csrfToken) {
      const raw = await store.getDel(`authz:${transactionId}`)
      if (raw === null) return undefined
      const record = JSON.parse(raw) as { pending: PendingAuthorization, browser: string, csrf: string }
      const browser = readCookie(request, BROWSER_COOKIE)
      if (browser === undefined || !safeEqual(hashSecret(browser), record.browser)) return undefined
      if (!safeEqual(hashSecret(csrfToken), record.csrf)) return undefined
      return record.pending
    },

    async startLogin (reply, pending) {
      const state = randomToken(32)
      // Whoever holds the provider URL must not finish the login in another browser (confused
      // deputy), nor hand their own callback to a victim (login CSRF). Lax, not Strict: the
      // provider's redirect back is a cross-site navigation.
      const browser = randomToken(32)
      const login: UpstreamLoginState = { pending, nonce: randomToken(32), codeVerifier: randomToken(48), browser: hashSecret(browser) }
      await store.set(`login:${hashSecret(state)}`, seal(key, JSON.stringify(login), LOGIN_CONTEXT), LOGIN_TTL)
      reply.setCookie(loginCookie(state), browser, { maxAge: LOGIN_TTL, sameSite: 'lax' })
      return { state, nonce: login.nonce, codeChallenge: s256(login.codeVerifier) }
    },

    async finishLogin (request, reply, state) {
      const name = loginCookie(state)
      const browser = readCookie(request, name)
      if (request.cookies[name] !== undefined) reply.clearCookie(name)
      const sealed = await store.getDel(`login:${hashSecret(state)}`)
      if (sealed === null) return undefined
      const login = JSON.parse(unseal(key, sealed, LOGIN_CONTEXT)) as UpstreamLoginState
      return browser !== undefined && safeEqual(hashSecret(browser), login.browser) ? login : undefined
    },

    async session (request) {
      const id = readCookie(request, SESSION_COOKIE)
      if (id === undefined) return undefined
      const raw = await store.get(sessionKey(id))
      return raw === null ? undefined : JSON.parse(raw) as UpstreamIdentity
    },

    async openSession (reply, identity) {
      reply.setCookie(USER_COOKIE, identity.sub, { maxAge: CLIENT_TTL_SECONDS })
      if (env.LOGIN_SESSION_TTL === 0) return
      const id = randomToken(32)
      await store.set(sessionKey(id), JSON.stringify(identity), env.LOGIN_SESSION_TTL)
      reply.setCookie(SESSION_COOKIE, id, { maxAge: env.LOGIN_SESSION_TTL })
    },

    knownUser: request => readCookie(request, USER_COOKIE),

    async approvedScopes (sub, clientId, resource) {
      const raw = await store.get(approvalKey(sub, clientId, resource))
      return raw === null ? [] : JSON.parse(raw) as string[]
    },

    async approve (sub, clientId, resource, scopes) {
      const before = await flow.approvedScopes(sub, clientId, resource)
      await store.set(approvalKey(sub, clientId, resource), JSON.stringify([...new Set([...before, ...scopes])]), CLIENT_TTL_SECONDS)
    },

    async saveUpstreamTokens (sub, tokens) {
      const previous = await store.get(`upstream:${sub}`)
      // Providers send a refresh token on the first consent only: keep the one held.
      if (tokens.refresh_token === undefined && previous !== null) {
        const held = JSON.parse(unseal(key, previous, UPSTREAM_CONTEXT)) as UpstreamTokens
        tokens = { ...tokens, refresh_token: held.refresh_token }
      }
      await store.set(`upstream:${sub}`, seal(key, JSON.stringify(tokens), UPSTREAM_CONTEXT), env.REFRESH_TOKEN_TTL)
    },

    async upstreamTokens (sub) {
      const sealed = await store.get(`upstream:${sub}`)
      return sealed === null ? null : JSON.parse(unseal(key, sealed, UPSTREAM_CONTEXT)) as UpstreamTokens
    },

    async dropUpstreamTokens (sub) {
      await store.del(`upstream:${sub}`)
    },

    async hasUpstreamRefreshToken (sub) {
      return (await flow.upstreamTokens(sub))?.refresh_token !== undefined
    }
  }
  fastify.decorate('authorizationFlow', flow)
}

export default fp(authorizationFlowPlugin, { name: 'authorization-flow', fastify: '5.x', dependencies: ['config', 'store', 'keys'] })
