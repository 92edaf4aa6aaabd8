/**
 * Who may log in: the global lists (ALLOWED_EMAILS, ALLOWED_EMAIL_DOMAINS) and the route's own
 * (allowed_emails, allowed_domains) must both admit the user. An empty pair of lists admits
 * every verified email; an unverified email is never admitted, whatever the lists say.
 */

export interface UpstreamIdentity {
  /** The provider's stable subject. */
  sub: string
  email?: string
  emailVerified: boolean
  /** The display name, when the provider gives one. */
  name?: string
  /** Google Workspace `hd` claim: a domain Google vouches for; set only for Google logins. */
  hostedDomain?: string
}

export interface AllowList {
  emails: readonly string[]
  domains: readonly string[]
}

export type AllowDecision = { allowed: true, email: string } | { allowed: false, reason: string }

function admits (list: AllowList, email: string, domains: readonly string[]): boolean {
  if (list.emails.length === 0 && list.domains.length === 0) return true
  return list.emails.includes(email) || domains.some(d => list.domains.includes(d))
}

/** Lists are expected lower-case (config and env parsing lower-case them). */
export function checkAllowLists (identity: UpstreamIdentity, global: AllowList, route: AllowList): AllowDecision {
  if (identity.email === undefined || identity.email === '') return { allowed: false, reason: 'the identity provider gave no email address' }
  if (!identity.emailVerified) return { allowed: false, reason: 'the email address is not verified' }
  const email = identity.email.toLowerCase()
  const domains = [email.slice(email.lastIndexOf('@') + 1)]
  if (identity.hostedDomain !== undefined) domains.push(identity.hostedDomain.toLowerCase())
  // The reason reaches the client (error_description): it never names the user.
  if (!admits(global, email, domains)) return { allowed: false, reason: 'this account is not allowed on this gateway' }
  if (!admits(route, email, domains)) return { allowed: false, reason: 'this account is not allowed on this MCP server' }
  return { allowed: true, email }
}
