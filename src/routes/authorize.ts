import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { normalizeIP } from '@fastify/rate-limit'
import { Type, type Static } from 'typebox'
import { gatewayScopes, grantableScopes, type RouteConfig } from '../config/config-file.js'
import { sendHtmlPage } from '../http/html-page.js'
import { checkAllowLists, type AllowDecision, type UpstreamIdentity } from '../oauth/allow-list.js'
import { buildAuthorizationRedirect, errorRedirect, validateAuthorizeRequest } from '../oauth/authorize-request.js'
import { renderConsentPage } from '../oauth/consent-page.js'
import { ErrorPage, OAuthError } from '../oauth/errors.js'
import type { Params } from '../oauth/params.js'
import { scopeDifference } from '../oauth/scopes.js'
import type { PendingAuthorization } from '../authorization/authorization-transactions.js'
import { UpstreamLoginError } from '../upstream/provider.js'
import { useIpQuota } from '../store/ip-quota.js'
import { rateLimitHook } from './rate-limit-hook.js'

/** OAuth parameters as the query parser gives them: repeated ones arrive as lists. */
export const AuthorizeQuerySchema = Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())]))

export const ConsentFormSchema = Type.Object({
  transaction_id: Type.String({ maxLength: 64 }),
  csrf_token: Type.String({ maxLength: 64 }),
  decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')])
})

export const CallbackQuerySchema = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 512 })),
  code: Type.Optional(Type.String({ maxLength: 4096 })),
  error: Type.Optional(Type.String({ maxLength: 256 }))
}, { additionalProperties: true })

const CONSENT_PATH = '/oauth/consent'
/**
 * Per browser address (IPv6 per /64), whatever the client id: client ids cost nothing (register
 * one, or name any), so a limit keyed by one limits nothing. 120 a minute is two logins a second
 * from one address, more than an office behind one egress address starts; one client stuck in a
 * login loop is held back sooner, by the per-client limit below.
 */
const AUTHORIZE_RATE_LIMIT = { max: 120, timeWindow: '1 minute' }
/** Per address and client: a looping client spends its own share, not its neighbours'. */
const AUTHORIZE_CLIENT_RATE_LIMIT = {
  max: 30,
  timeWindow: '1 minute',
  keyGenerator: (request: FastifyRequest) => `authorize|${normalizeIP(request.ip)}|${String((request.query as Params).client_id ?? '')}`
}
/**
 * Consent pages (each one a record, and after approval a provider-login state) one address may
 * open per 10 minutes, the time both records live: PENDING_AUTHORIZATIONS_PER_IP, counted in the
 * store so that every replica shares it. A user with a session and an approval opens none.
 */
const PENDING_WINDOW_SECONDS = 600

async function admitPendingAuthorization (fastify: FastifyInstance, request: FastifyRequest): Promise<void> {
  const quota = { name: 'pending-ip', max: fastify.config.env.PENDING_AUTHORIZATIONS_PER_IP, windowSeconds: PENDING_WINDOW_SECONDS }
  const { allowed, retryAfter } = await useIpQuota(fastify.store, quota, request.ip)
  if (!allowed) {
    throw new ErrorPage('Too many sign-ins', 'Too many sign-ins were started from your network. Wait a few minutes, then start again from the application.', 429, { 'retry-after': String(retryAfter) })
  }
}

/** Where a redirect URI's answer goes, as a CSP form-action source. */
function formTarget (redirectUri: string): string {
  const url = new URL(redirectUri)
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol
}

/**
 * The interactive part of the authorization server: GET /oauth/authorize validates the request
 * and shows the consent page (or goes straight through for a logged-in user who approved the
 * client before); POST /oauth/consent takes the decision and starts the upstream login;
 * GET /oauth/callback finishes it and sends the client its code.
 */
export default async function authorizeRoutes (fastify: FastifyInstance): Promise<void> {
  const { env, routes, routeByPattern, globalAllow } = fastify.config
  const flow = fastify.authorizationFlow
  const issuer = env.BASE_URL
  if (globalAllow.emails.length === 0 && globalAllow.domains.length === 0 && routes.some(r => r.allowedEmails.length + r.allowedDomains.length === 0)) {
    fastify.log.warn('no allow-list (ALLOWED_EMAILS, ALLOWED_EMAIL_DOMAINS or per route) covers some routes: every verified email can log in to them')
  }
  const supportedScopes = gatewayScopes(routes)

  function upstream (): NonNullable<typeof fastify.upstreamIdp> {
    if (fastify.upstreamIdp === null) throw new ErrorPage('Login unavailable', 'The gateway has no identity provider configured yet.', 503)
    return fastify.upstreamIdp
  }

  /**
   * The browser's gateway session, unless the route needs the user's provider token and none is
   * held (revoked or expired at the provider): then only a new provider login will do.
   */
  async function usableSession (request: FastifyRequest, route: RouteConfig | undefined): Promise<UpstreamIdentity | undefined> {
    const session = await flow.session(request)
    if (session === undefined || route?.upstream.auth !== 'provider_token') return session
    return await fastify.upstreamTokens.get(session.sub) === null ? undefined : session
  }

  /** The allow-lists as they stand now, for the route the client asked for. */
  function admit (pending: PendingAuthorization, identity: UpstreamIdentity): AllowDecision {
    const route = routeByPattern.get(pending.resource)
    if (route === undefined) return { allowed: false, reason: 'the MCP server is no longer served' }
    return checkAllowLists(identity, globalAllow, { emails: route.allowedEmails, domains: route.allowedDomains })
  }

  async function refuse (reply: FastifyReply, pending: PendingAuthorization, reason: string): Promise<FastifyReply> {
    fastify.log.info({ client: pending.clientId, route: pending.resource }, 'login refused by the allow-lists')
    return await reply.redirect(errorRedirect(pending.redirectUri, new OAuthError('access_denied', reason), pending.state, issuer))
  }

  /** The user is admitted: remember the approval, send the client its code. */
  async function grant (reply: FastifyReply, pending: PendingAuthorization, identity: UpstreamIdentity, email: string): Promise<FastifyReply> {
    await flow.approve(identity.sub, pending.clientId, pending.resource, pending.scopes)
    const code = await fastify.grants.issueCode({
      clientId: pending.clientId,
      redirectUri: pending.redirectUri,
      codeChallenge: pending.codeChallenge,
      resource: pending.resource,
      scopes: pending.scopes,
      sub: identity.sub,
      email,
      emailVerified: identity.emailVerified,
      hostedDomain: identity.hostedDomain
    })
    return await reply.redirect(buildAuthorizationRedirect(pending.redirectUri, { code, state: pending.state, iss: issuer }))
  }

  /** A user with a gateway session: the lists may have changed since the login, so check again. */
  async function complete (reply: FastifyReply, pending: PendingAuthorization, identity: UpstreamIdentity): Promise<FastifyReply> {
    const decision = admit(pending, identity)
    return decision.allowed ? await grant(reply, pending, identity, decision.email) : await refuse(reply, pending, decision.reason)
  }

  function domainHint (pending: PendingAuthorization): string | undefined {
    const route = routeByPattern.get(pending.resource)
    const domains = route !== undefined && route.allowedDomains.length > 0 ? route.allowedDomains : globalAllow.domains
    return domains.length === 1 ? domains[0] : undefined
  }

  const authorizeOptions = {
    schema: { querystring: AuthorizeQuerySchema },
    config: { rateLimit: AUTHORIZE_RATE_LIMIT, browserPage: true },
    onRequest: rateLimitHook(fastify, AUTHORIZE_CLIENT_RATE_LIMIT)
  }
  for (const url of ['/oauth/authorize', '/authorize']) {
    fastify.get(url, authorizeOptions, async (request, reply) => {
      const outcome = await validateAuthorizeRequest(request.query as Params, {
        // No scope asked: the route's own, below (never the scopes its tools step up to).
        issuer, findClient: fastify.clients.findForPage(request), routes, supportedScopes, defaultScopes: []
      })
      if (!outcome.ok) return await reply.redirect(outcome.redirectTo)
      const { client, redirectUri, codeChallenge, route, scopes, state } = outcome.request
      // Scopes the route does not use would open nothing: grant only the route's (its own
      // when none of the asked ones is).
      const grantable = grantableScopes(route)
      const own = scopes.filter(s => grantable.includes(s))
      const routeScopes = own.length > 0 ? own : route.scopes
      const pending: PendingAuthorization = {
        clientId: client.client_id, clientName: client.client_name, redirectUri, codeChallenge, resource: route.pattern, scopes: routeScopes, state
      }
      const idp = upstream()
      const session = await usableSession(request, route)
      const approved = session !== undefined ? await flow.approvedScopes(session.sub, client.client_id, route.pattern) : []
      const missing = scopeDifference(routeScopes, approved)
      if (session !== undefined && missing.length === 0) return await complete(reply, pending, session)

      await admitPendingAuthorization(fastify, request)
      const { transactionId, csrfToken } = await flow.openTransaction(request, reply, pending)
      return await sendHtmlPage(reply, 200, nonce => renderConsentPage({
        clientId: client.client_id,
        clientName: client.client_name,
        redirectUri,
        resourceUrl: route.resourceUrl,
        // Step-up: ask for the difference only, show what was approved before.
        scopes: missing,
        grantedScopes: approved.filter(s => routeScopes.includes(s)),
        action: CONSENT_PATH,
        csrfToken,
        transactionId,
        nonce
      }), [idp.loginOrigin, formTarget(redirectUri)])
    })
  }

  fastify.post(CONSENT_PATH, { schema: { body: ConsentFormSchema }, config: { browserPage: true } }, async (request, reply) => {
    const form = request.body as Static<typeof ConsentFormSchema>
    const pending = await flow.takeTransaction(request, form.transaction_id, form.csrf_token)
    if (pending === undefined) {
      throw new ErrorPage('Request expired', 'This approval form was already used, has expired, or was not opened in this browser. Start again from the application.')
    }
    if (form.decision === 'deny') {
      return await reply.redirect(errorRedirect(pending.redirectUri, new OAuthError('access_denied', 'the user denied the request'), pending.state, issuer))
    }
    const session = await usableSession(request, routeByPattern.get(pending.resource))
    if (session !== undefined) return await complete(reply, pending, session)
    const idp = upstream()
    const known = flow.knownUser(request)
    const { state, nonce, codeChallenge } = await flow.startLogin(reply, pending)
    return await reply.redirect(idp.authorizationUrl({
      state,
      nonce,
      codeChallenge,
      offlineConsent: known === undefined || !(await fastify.upstreamTokens.hasRefreshToken(known)),
      domainHint: domainHint(pending)
    }))
  })

  fastify.get('/oauth/callback', { schema: { querystring: CallbackQuerySchema }, attachValidation: true, config: { browserPage: true } }, async (request, reply) => {
    // A browser lands here: a malformed answer (repeated or oversized parameters) is a page too.
    if (request.validationError !== undefined) throw new ErrorPage('Login failed', 'The identity provider sent back a malformed answer, so this login cannot be completed.')
    const query = request.query as Static<typeof CallbackQuerySchema>
    if (query.state === undefined) throw new ErrorPage('Login failed', 'The identity provider sent no state back, so this login cannot be matched to a request.')
    const login = await flow.finishLogin(request, reply, query.state)
    if (login === undefined) {
      throw new ErrorPage('Login expired', 'This login was already completed or has expired, or it was started in another browser. Start again from the application.')
    }
    const { pending } = login
    const fail = async (code: 'access_denied' | 'server_error', description: string): Promise<FastifyReply> =>
      await reply.redirect(errorRedirect(pending.redirectUri, new OAuthError(code, description), pending.state, issuer))
    if (query.error !== undefined || query.code === undefined) {
      fastify.gatewayMetrics.logins.inc({ outcome: 'denied' })
      return await fail('access_denied', `the identity provider did not log the user in (${query.error ?? 'no code'})`)
    }
    let result
    try {
      result = await upstream().exchange(query.code, login.codeVerifier, login.nonce)
    } catch (err) {
      if (!(err instanceof UpstreamLoginError)) throw err
      request.log.warn({ err }, 'upstream login failed')
      fastify.gatewayMetrics.logins.inc({ outcome: 'failed' })
      return await fail('server_error', 'logging in with the identity provider failed')
    }
    // Someone the lists refuse gets neither a session nor stored provider tokens.
    const decision = admit(pending, result.identity)
    fastify.gatewayMetrics.logins.inc({ outcome: decision.allowed ? 'ok' : 'refused' })
    if (!decision.allowed) return await refuse(reply, pending, decision.reason)
    await fastify.upstreamTokens.save(result.identity.sub, result.tokens)
    await flow.openSession(reply, result.identity)
    return await grant(reply, pending, result.identity, decision.email)
  })
}
