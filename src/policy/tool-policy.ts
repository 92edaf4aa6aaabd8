/** A caller as far as tool policy is concerned. */
export interface Caller { email?: string, clientId?: string, scopes: readonly string[] }

export interface ToolGrant {
  emails: string[]
  domains: string[]
  /** Client ids: machine callers (client credentials) have no email. */
  clients: string[]
  allow: string[]
}

export interface ToolPolicyConfig {
  /** What every caller of the route may call; absent: every tool. */
  allow?: string[]
  /** Never, for anyone; wins over every allow. */
  deny: string[]
  /** More tools for named people, whole domains or named clients. */
  grants: ToolGrant[]
  /** Scopes a token must carry for a tool, beyond the route's. */
  requiredScopes: Record<string, string[]>
}

export type ToolDecision =
  | { allowed: true }
  | { allowed: false, reason: 'denied' | 'not_allowed' }
  | { allowed: false, reason: 'insufficient_scope', needed: string[] }

/** `*` matches any run of characters, `?` one (line breaks too: a deny must not stop at one); everything else literally. */
export function globToRegExp (glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${escaped}$`, 's')
}

/**
 * The per-route tool rules, compiled once. Deny wins; then the route-wide allow list or a grant
 * for the caller's email, email domain or client; then the tool's required scopes.
 */
export class ToolPolicy {
  private readonly allow: RegExp[] | null
  private readonly deny: RegExp[]
  private readonly grants: Array<{ emails: Set<string>, domains: Set<string>, clients: Set<string>, allow: RegExp[] }>
  private readonly requiredScopes: Map<string, string[]>

  constructor (config: ToolPolicyConfig) {
    this.allow = config.allow === undefined ? null : config.allow.map(globToRegExp)
    this.deny = config.deny.map(globToRegExp)
    this.grants = config.grants.map(g => ({ emails: new Set(g.emails), domains: new Set(g.domains), clients: new Set(g.clients), allow: g.allow.map(globToRegExp) }))
    this.requiredScopes = new Map(Object.entries(config.requiredScopes))
  }

  /** Every scope some tool of the route asks for (for the protected-resource metadata). */
  get toolScopes (): string[] {
    return [...new Set([...this.requiredScopes.values()].flat())]
  }

  /** Whether the caller may see the tool at all (tools/list), scopes aside. */
  visible (tool: string, caller: Caller): boolean {
    if (this.deny.some(r => r.test(tool))) return false
    if (this.allow === null || this.allow.some(r => r.test(tool))) return true
    const email = caller.email?.toLowerCase()
    const domain = email?.slice(email.lastIndexOf('@') + 1)
    const named = (g: { emails: Set<string>, domains: Set<string>, clients: Set<string> }): boolean =>
      (email !== undefined && (g.emails.has(email) || g.domains.has(domain as string))) ||
      (caller.clientId !== undefined && g.clients.has(caller.clientId))
    return this.grants.some(g => named(g) && g.allow.some(r => r.test(tool)))
  }

  decide (tool: string, caller: Caller): ToolDecision {
    if (this.deny.some(r => r.test(tool))) return { allowed: false, reason: 'denied' }
    if (!this.visible(tool, caller)) return { allowed: false, reason: 'not_allowed' }
    const needed = this.requiredScopes.get(tool)
    if (needed !== undefined && !needed.every(s => caller.scopes.includes(s))) return { allowed: false, reason: 'insufficient_scope', needed }
    return { allowed: true }
  }
}
