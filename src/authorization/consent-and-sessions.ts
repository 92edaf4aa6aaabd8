import type { UpstreamIdentity } from '../oauth/allow-list.js'
import { hashSecret, randomToken } from '../oauth/secrets.js'
import { KEY_KINDS } from '../store/storage-schema.js'
import type { ServiceDeps } from './service-deps.js'

/**
 * The gateway's login sessions (a server-side record named by a secret the browser keeps in a
 * cookie; only its hash is a key) and the approvals users gave, per (user, client, route).
 */
export interface ConsentAndSessions {
  /** Who the session secret logged in as, while the session lasts. */
  session: (secret: string | undefined) => Promise<UpstreamIdentity | undefined>
  /** The new session's secret; undefined when sessions are off (LOGIN_SESSION_TTL=0). */
  openSession: (identity: UpstreamIdentity) => Promise<string | undefined>
  approvedScopes: (sub: string, clientId: string, resource: string) => Promise<string[]>
  /** Adds to what was approved before (step-up asks only for the difference). */
  approve: (sub: string, clientId: string, resource: string, scopes: string[]) => Promise<void>
}

export function createConsentAndSessions ({ records, config }: Pick<ServiceDeps, 'records' | 'config'>): ConsentAndSessions {
  const ttl = config.env.LOGIN_SESSION_TTL
  const approvalId = (sub: string, clientId: string, resource: string): string => hashSecret(`${sub}\n${clientId}\n${resource}`)
  const service: ConsentAndSessions = {
    session: async secret => secret === undefined ? undefined : await records.get(KEY_KINDS.session, hashSecret(secret)),

    async openSession (identity) {
      if (ttl === 0) return undefined
      const secret = randomToken(32)
      await records.set(KEY_KINDS.session, hashSecret(secret), identity, ttl)
      return secret
    },

    approvedScopes: async (sub, clientId, resource) => await records.get(KEY_KINDS.consent, approvalId(sub, clientId, resource)) ?? [],

    async approve (sub, clientId, resource, scopes) {
      const before = await service.approvedScopes(sub, clientId, resource)
      await records.set(KEY_KINDS.consent, approvalId(sub, clientId, resource), [...new Set([...before, ...scopes])])
    }
  }
  return service
}
