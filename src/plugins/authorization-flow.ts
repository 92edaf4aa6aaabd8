import { hkdfSync } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyCookieOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createAuthorizationTransactions, type PendingAuthorization, type UpstreamLoginState } from '../authorization/authorization-transactions.js'
import { createConsentAndSessions, type ConsentAndSessions } from '../authorization/consent-and-sessions.js'
import { createUpstreamTokenVault, type UpstreamTokenVault } from '../authorization/upstream-token-vault.js'
import type { UpstreamIdentity } from '../oauth/allow-list.js'
import { hashSecret, randomToken } from '../oauth/secrets.js'
import { CLIENT_TTL_SECONDS, LOGIN_TTL_SECONDS } from '../store/storage-schema.js'
import { serviceDeps } from './service-deps.js'

/** The browser side of the services: the same operations, with the browser's cookies read and set. */
export interface AuthorizationFlow extends Pick<ConsentAndSessions, 'approvedScopes' | 'approve'> {
  /** @fastify/cookie's options for the authorization server's context (see plugins/oauth-context.ts). */
  cookieOptions: FastifyCookieOptions
  openTransaction: (request: FastifyRequest, reply: FastifyReply, pending: PendingAuthorization) => Promise<{ transactionId: string, csrfToken: string }>
  takeTransaction: (request: FastifyRequest, transactionId: string, csrfToken: string) => Promise<PendingAuthorization | undefined>
  /** Sets this login's own cookie, so that logins running at once in one browser do not overwrite each other's. */
  startLogin: (reply: FastifyReply, pending: PendingAuthorization) => Promise<{ state: string, nonce: string, codeChallenge: string }>
  finishLogin: (request: FastifyRequest, reply: FastifyReply, state: string) => Promise<UpstreamLoginState | undefined>
  /** Who this browser logged in as, while the gateway session lasts. */
  session: (request: FastifyRequest) => Promise<UpstreamIdentity | undefined>
  /** Opens the session and remembers the user in this browser (for the next login's prompt). */
  openSession: (reply: FastifyReply, identity: UpstreamIdentity) => Promise<void>
  /** The subject who last logged in from this browser, even after the session ended. */
  knownUser: (request: FastifyRequest) => string | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    authorizationFlow: AuthorizationFlow
    /** The users' identity-provider tokens, sealed in the store. */
    upstreamTokens: UpstreamTokenVault
  }
}

const BROWSER_TTL = 24 * 60 * 60

/**
 * Adapts the consent transactions, upstream logins and sessions (src/authorization/) to the
 * browser's cookies, and decorates the upstream-token vault.
 *
 * Cookies carry the `__Host-` prefix and `Secure` when BASE_URL is https; browsers refuse both
 * on plain http, so local http development uses the same names without the prefix. They are
 * signed with a key derived from each ENCRYPTION_KEY: the first signs, the others still verify.
 */
async function authorizationFlowPlugin (fastify: FastifyInstance): Promise<void> {
  const deps = serviceDeps(fastify)
  const transactions = createAuthorizationTransactions(deps)
  const consent = createConsentAndSessions(deps)
  const secure = deps.config.env.BASE_URL.startsWith('https:')
  const prefix = secure ? '__Host-' : ''
  const SESSION_COOKIE = `${prefix}mcpgw-session`
  const BROWSER_COOKIE = `${prefix}mcpgw-browser`
  const USER_COOKIE = `${prefix}mcpgw-user`
  const loginCookie = (state: string): string => `${prefix}mcpgw-login-${hashSecret(state).slice(0, 16)}`

  const readCookie = (request: FastifyRequest, name: string): string | undefined => {
    const raw = request.cookies[name]
    if (raw === undefined) return undefined
    const { valid, value } = request.unsignCookie(raw)
    return valid && value !== null ? value : undefined
  }

  const flow: AuthorizationFlow = {
    cookieOptions: {
      secret: deps.keys.encryptionKeys.map(key => Buffer.from(hkdfSync('sha256', key, '', 'mcpgw cookies', 32)).toString('base64')),
      parseOptions: { path: '/', httpOnly: true, secure, sameSite: 'lax', signed: true }
    },

    async openTransaction (request, reply, pending) {
      let browser = readCookie(request, BROWSER_COOKIE)
      if (browser === undefined) {
        browser = randomToken(32)
        reply.setCookie(BROWSER_COOKIE, browser, { maxAge: BROWSER_TTL, sameSite: 'strict' })
      }
      return await transactions.open(pending, browser)
    },

    takeTransaction: async (request, transactionId, csrfToken) => await transactions.take(transactionId, csrfToken, readCookie(request, BROWSER_COOKIE)),

    async startLogin (reply, pending) {
      const { browser, ...login } = await transactions.startLogin(pending)
      // Lax, not Strict: the provider's redirect back is a cross-site navigation.
      reply.setCookie(loginCookie(login.state), browser, { maxAge: LOGIN_TTL_SECONDS, sameSite: 'lax' })
      return login
    },

    async finishLogin (request, reply, state) {
      const name = loginCookie(state)
      const browser = readCookie(request, name)
      if (request.cookies[name] !== undefined) reply.clearCookie(name)
      return await transactions.finishLogin(state, browser)
    },

    session: async request => await consent.session(readCookie(request, SESSION_COOKIE)),

    async openSession (reply, identity) {
      reply.setCookie(USER_COOKIE, identity.sub, { maxAge: CLIENT_TTL_SECONDS })
      const secret = await consent.openSession(identity)
      if (secret !== undefined) reply.setCookie(SESSION_COOKIE, secret, { maxAge: deps.config.env.LOGIN_SESSION_TTL })
    },

    knownUser: request => readCookie(request, USER_COOKIE),
    approvedScopes: consent.approvedScopes,
    approve: consent.approve
  }
  fastify.decorate('authorizationFlow', flow)
  fastify.decorate('upstreamTokens', createUpstreamTokenVault(deps))
}

export default fp(authorizationFlowPlugin, { name: 'authorization-flow', fastify: '5.x', dependencies: ['config', 'store', 'keys'] })
