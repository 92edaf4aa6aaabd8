/**
 * The interactive authorization flow's decisions, without the browser: which scopes a request
 * gets, whether a signed-in user goes straight through or sees the consent page, what the
 * consent decision leads to, and how a finished provider login ends (allow-lists, provider
 * tokens kept, a code issued). Each step answers where the browser goes next; cookies and pages
 * are the route's (src/routes/authorize.ts) and the authorization-flow plugin's.
 */
import { gatewayScopes, grantableScopes, type RouteConfig } from '../config/config-file.js'
import { checkAllowLists, type AllowDecision, type UpstreamIdentity } from '../oauth/allow-list.js'
import { buildAuthorizationRedirect, errorRedirect, validateAuthorizeRequest, type AuthorizeClient } from '../oauth/authorize-request.js'
import { OAuthError } from '../oauth/errors.js'
import type { Params } from '../oauth/params.js'
import { scopeDifference } from '../oauth/scopes.js'
import type { UpstreamLogin } from '../upstream/provider.js'
import type { PendingAuthorization } from './authorization-transactions.js'
import type { FindClient } from './clients.js'
import type { ConsentAndSessions } from './consent-and-sessions.js'
import type { Grants } from './grants.js'
import type { ServiceDeps } from './service-deps.js'
import type { UpstreamTokenVault } from './upstream-token-vault.js'

export type AuthorizeStep =
  /** Send the browser here (the client's redirect URI, with a code or an error). */
  | { kind: 'redirect', url: string, refused?: string }
  /** Show the consent page for `missing` (step-up: only what was not approved before). */
  | { kind: 'consent', pending: PendingAuthorization, client: AuthorizeClient, route: RouteConfig, missing: string[], granted: string[] }

export type ConsentStep =
  | { kind: 'redirect', url: string, refused?: string }
  /** Send the user to the identity provider. */
  | { kind: 'login', domainHint?: string }

export interface AuthorizationRequests {
  /** GET /oauth/authorize: `session` is who the browser's gateway session names, if anyone. */
  authorize: (query: Params, session: UpstreamIdentity | undefined, findClient: FindClient) => Promise<AuthorizeStep>
  /** The consent form came back (from the right browser, with its CSRF token). */
  consent: (pending: PendingAuthorization, decision: 'approve' | 'deny', session: UpstreamIdentity | undefined) => Promise<ConsentStep>
  /** Whether the provider should be asked for offline access (no refresh token held for whoever last logged in here). */
  offlineConsent: (knownUser: string | undefined) => Promise<boolean>
  /**
   * The provider logged the user in: check the allow-lists, keep the provider tokens, issue the
   * code. `admitted` says whether to open the gateway session (never for a refused user).
   */
  loggedIn: (pending: PendingAuthorization, login: UpstreamLogin) => Promise<{ url: string, admitted: boolean }>
  /** The provider did not log the user in, or the exchange failed: an error on the client's redirect URI. */
  failed: (pending: PendingAuthorization, code: 'access_denied' | 'server_error', description: string) => string
}

export interface AuthorizationRequestsDeps extends Pick<ServiceDeps, 'config'> {
  grants: Pick<Grants, 'issueCode'>
  consent: Pick<ConsentAndSessions, 'approvedScopes' | 'approve'>
  vault: Pick<UpstreamTokenVault, 'get' | 'save' | 'hasRefreshToken'>
}

export function createAuthorizationRequests ({ config, grants, consent, vault }: AuthorizationRequestsDeps): AuthorizationRequests {
  const { env, routes, routeByPattern, globalAllow } = config
  const issuer = env.BASE_URL
  const supportedScopes = gatewayScopes(routes)

  const failed = (pending: PendingAuthorization, code: 'access_denied' | 'server_error', description: string): string =>
    errorRedirect(pending.redirectUri, new OAuthError(code, description), pending.state, issuer)

  /**
   * The browser's gateway session, unless the route needs the user's provider token and none is
   * held (revoked or expired at the provider): then only a new provider login will do.
   */
  async function usable (session: UpstreamIdentity | undefined, route: RouteConfig | undefined): Promise<UpstreamIdentity | undefined> {
    if (session === undefined || route?.upstream.auth !== 'provider_token') return session
    return await vault.get(session.sub) === null ? undefined : session
  }

  /** The allow-lists as they stand now, for the route the client asked for. */
  function admit (pending: PendingAuthorization, identity: UpstreamIdentity): AllowDecision {
    const route = routeByPattern.get(pending.resource)
    if (route === undefined) return { allowed: false, reason: 'the MCP server is no longer served' }
    return checkAllowLists(identity, globalAllow, { emails: route.allowedEmails, domains: route.allowedDomains })
  }

  /** Admitted: remember the approval, send the client its code. Refused: access_denied. */
  async function complete (pending: PendingAuthorization, identity: UpstreamIdentity, decision = admit(pending, identity)): Promise<{ kind: 'redirect', url: string, refused?: string }> {
    if (!decision.allowed) return { kind: 'redirect', url: failed(pending, 'access_denied', decision.reason), refused: decision.reason }
    await consent.approve(identity.sub, pending.clientId, pending.resource, pending.scopes)
    const code = await grants.issueCode({
      clientId: pending.clientId,
      redirectUri: pending.redirectUri,
      codeChallenge: pending.codeChallenge,
      resource: pending.resource,
      scopes: pending.scopes,
      sub: identity.sub,
      email: decision.email,
      emailVerified: identity.emailVerified,
      hostedDomain: identity.hostedDomain
    })
    return { kind: 'redirect', url: buildAuthorizationRedirect(pending.redirectUri, { code, state: pending.state, iss: issuer }) }
  }

  function domainHint (pending: PendingAuthorization): string | undefined {
    const route = routeByPattern.get(pending.resource)
    const domains = route !== undefined && route.allowedDomains.length > 0 ? route.allowedDomains : globalAllow.domains
    return domains.length === 1 ? domains[0] : undefined
  }

  return {
    async authorize (query, session, findClient) {
      // No scope asked: the route's own, below (never the scopes its tools step up to).
      const outcome = await validateAuthorizeRequest(query, { issuer, findClient, routes, supportedScopes, defaultScopes: [] })
      if (!outcome.ok) return { kind: 'redirect', url: outcome.redirectTo }
      const { client, redirectUri, codeChallenge, route, scopes, state } = outcome.request
      // Scopes the route does not use would open nothing: grant only the route's (its own when
      // none of the asked ones is).
      const grantable = grantableScopes(route)
      const own = scopes.filter(s => grantable.includes(s))
      const routeScopes = own.length > 0 ? own : route.scopes
      const pending: PendingAuthorization = {
        clientId: client.client_id, clientName: client.client_name, redirectUri, codeChallenge, resource: route.pattern, scopes: routeScopes, state
      }
      const user = await usable(session, route)
      const approved = user !== undefined ? await consent.approvedScopes(user.sub, client.client_id, route.pattern) : []
      const missing = scopeDifference(routeScopes, approved)
      // A user with a gateway session: the lists may have changed since the login, so complete() checks again.
      if (user !== undefined && missing.length === 0) return await complete(pending, user)
      return { kind: 'consent', pending, client, route, missing, granted: approved.filter(s => routeScopes.includes(s)) }
    },

    async consent (pending, decision, session) {
      if (decision === 'deny') return { kind: 'redirect', url: failed(pending, 'access_denied', 'the user denied the request') }
      const user = await usable(session, routeByPattern.get(pending.resource))
      if (user !== undefined) return await complete(pending, user)
      return { kind: 'login', domainHint: domainHint(pending) }
    },

    offlineConsent: async knownUser => knownUser === undefined || !(await vault.hasRefreshToken(knownUser)),

    async loggedIn (pending, login) {
      // Someone the lists refuse gets neither a session nor stored provider tokens.
      const decision = admit(pending, login.identity)
      if (decision.allowed) await vault.save(login.identity.sub, login.tokens)
      const step = await complete(pending, login.identity, decision)
      return { url: step.url, admitted: decision.allowed }
    },

    failed
  }
}
