import { s256 } from '../oauth/pkce.js'
import { hashSecret, randomToken, safeEqual } from '../oauth/secrets.js'
import { KEY_KINDS, type PendingAuthorization, type UpstreamLoginState } from '../store/storage-schema.js'
import type { ServiceDeps } from './service-deps.js'

export type { PendingAuthorization, UpstreamLoginState } from '../store/storage-schema.js'

/**
 * The two single-use steps of a browser login, each bound to the browser by a secret the
 * caller keeps in a cookie (only its hash is stored): the consent page's transaction (with its
 * CSRF token), then the upstream login's state, nonce and PKCE verifier (sealed, 10 minutes).
 */
export interface AuthorizationTransactions {
  /** Stores the request behind the consent page; the form must come back from `browser`. */
  open: (pending: PendingAuthorization, browser: string) => Promise<{ transactionId: string, csrfToken: string }>
  /** Single use; undefined when unknown, expired, from another browser or with a wrong CSRF token. */
  take: (transactionId: string, csrfToken: string, browser: string | undefined) => Promise<PendingAuthorization | undefined>
  /**
   * The upstream login: `browser` is the new secret for the login cookie. Whoever holds the
   * provider URL must not finish the login in another browser (confused deputy), nor hand their
   * own callback to a victim (login CSRF).
   */
  startLogin: (pending: PendingAuthorization) => Promise<{ state: string, nonce: string, codeChallenge: string, browser: string }>
  /** Single use; undefined when unknown, expired, or when `browser` is not the one that started it. */
  finishLogin: (state: string, browser: string | undefined) => Promise<UpstreamLoginState | undefined>
}

export function createAuthorizationTransactions ({ records }: Pick<ServiceDeps, 'records'>): AuthorizationTransactions {
  const sameBrowser = (browser: string | undefined, hash: string): boolean => browser !== undefined && safeEqual(hashSecret(browser), hash)
  return {
    async open (pending, browser) {
      const transactionId = randomToken(16)
      const csrfToken = randomToken(32)
      await records.set(KEY_KINDS.authz, transactionId, { pending, browser: hashSecret(browser), csrf: hashSecret(csrfToken) })
      return { transactionId, csrfToken }
    },

    async take (transactionId, csrfToken, browser) {
      const record = await records.take(KEY_KINDS.authz, transactionId)
      if (record === undefined || !sameBrowser(browser, record.browser)) return undefined
      return safeEqual(hashSecret(csrfToken), record.csrf) ? record.pending : undefined
    },

    async startLogin (pending) {
      const state = randomToken(32)
      const browser = randomToken(32)
      const login: UpstreamLoginState = { pending, nonce: randomToken(32), codeVerifier: randomToken(48), browser: hashSecret(browser) }
      await records.set(KEY_KINDS.login, hashSecret(state), login)
      return { state, nonce: login.nonce, codeChallenge: s256(login.codeVerifier), browser }
    },

    async finishLogin (state, browser) {
      const login = await records.take(KEY_KINDS.login, hashSecret(state))
      return login !== undefined && sameBrowser(browser, login.browser) ? login : undefined
    }
  }
}
