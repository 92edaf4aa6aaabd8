import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { normalizeIP } from '@fastify/rate-limit'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { createAuthorizationRequests } from '../authorization/authorization-requests.js'
import type { PendingAuthorization } from '../authorization/authorization-transactions.js'
import { sendHtmlPage } from '../http/html-page.js'
import { renderConsentPage } from '../oauth/consent-page.js'
import { ErrorPage } from '../oauth/errors.js'
import type { Params } from '../oauth/params.js'
import { UpstreamLoginError, type UpstreamLogin } from '../upstream/provider.js'
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
 * GET /oauth/callback finishes it and sends the client its code. The decisions are the
 * service's (src/authorization/authorization-requests.ts); this reads and sets the browser's
 * cookies and renders the pages.
 */
export default async function authorizeRoutes (instance: FastifyInstance): Promise<void> {
  const fastify = instance.withTypeProvider<TypeBoxTypeProvider>()
  const { routes, globalAllow } = fastify.config
  const flow = fastify.authorizationFlow
  if (globalAllow.emails.length === 0 && globalAllow.domains.length === 0 && routes.some(r => r.allowedEmails.length + r.allowedDomains.length === 0)) {
    fastify.log.warn('no allow-list (ALLOWED_EMAILS, ALLOWED_EMAIL_DOMAINS or per route) covers some routes: every verified email can log in to them')
  }
  const requests = createAuthorizationRequests({ config: fastify.config, grants: fastify.grants, consent: flow, vault: fastify.upstreamTokens })

  function upstream (): NonNullable<typeof fastify.upstreamIdp> {
    if (fastify.upstreamIdp === null) throw new ErrorPage('Login unavailable', 'The gateway has no identity provider configured yet.', 503)
    return fastify.upstreamIdp
  }

  async function redirect (reply: FastifyReply, step: { url: string, refused?: string }, pending?: PendingAuthorization): Promise<FastifyReply> {
    if (step.refused !== undefined) fastify.log.info({ client: pending?.clientId, route: pending?.resource }, 'login refused by the allow-lists')
    return await reply.redirect(step.url)
  }

  const authorizeOptions = {
    schema: { querystring: AuthorizeQuerySchema },
    config: { rateLimit: AUTHORIZE_RATE_LIMIT, browserPage: true },
    onRequest: rateLimitHook(fastify, AUTHORIZE_CLIENT_RATE_LIMIT)
  }
  for (const url of ['/oauth/authorize', '/authorize']) {
    fastify.get(url, authorizeOptions, async (request, reply) => {
      const step = await requests.authorize(request.query, await flow.session(request), fastify.clients.findForPage(request))
      if (step.kind === 'redirect') return await redirect(reply, step, undefined)
      const idp = upstream()
      await admitPendingAuthorization(fastify, request)
      const { transactionId, csrfToken } = await flow.openTransaction(request, reply, step.pending)
      return await sendHtmlPage(reply, 200, nonce => renderConsentPage({
        clientId: step.client.client_id,
        clientName: step.client.client_name,
        redirectUri: step.pending.redirectUri,
        resourceUrl: step.route.resourceUrl,
        // Step-up: ask for the difference only, show what was approved before.
        scopes: step.missing,
        grantedScopes: step.granted,
        action: CONSENT_PATH,
        csrfToken,
        transactionId,
        nonce
      }), [idp.loginOrigin, formTarget(step.pending.redirectUri)])
    })
  }

  fastify.post(CONSENT_PATH, { schema: { body: ConsentFormSchema }, config: { browserPage: true } }, async (request, reply) => {
    const form = request.body
    const pending = await flow.takeTransaction(request, form.transaction_id, form.csrf_token)
    if (pending === undefined) {
      throw new ErrorPage('Request expired', 'This approval form was already used, has expired, or was not opened in this browser. Start again from the application.')
    }
    const step = await requests.consent(pending, form.decision, await flow.session(request))
    if (step.kind === 'redirect') return await redirect(reply, step, pending)
    const idp = upstream()
    const offlineConsent = await requests.offlineConsent(flow.knownUser(request))
    const { state, nonce, codeChallenge } = await flow.startLogin(reply, pending)
    return await reply.redirect(idp.authorizationUrl({ state, nonce, codeChallenge, offlineConsent, domainHint: step.domainHint }))
  })

  fastify.get('/oauth/callback', { schema: { querystring: CallbackQuerySchema }, attachValidation: true, config: { browserPage: true } }, async (request, reply) => {
    // A browser lands here: a malformed answer (repeated or oversized parameters) is a page too.
    if (request.validationError !== undefined) throw new ErrorPage('Login failed', 'The identity provider sent back a malformed answer, so this login cannot be completed.')
    const query = request.query
    if (query.state === undefined) throw new ErrorPage('Login failed', 'The identity provider sent no state back, so this login cannot be matched to a request.')
    const login = await flow.finishLogin(request, reply, query.state)
    if (login === undefined) {
      throw new ErrorPage('Login expired', 'This login was already completed or has expired, or it was started in another browser. Start again from the application.')
    }
    const { pending } = login
    if (query.error !== undefined || query.code === undefined) {
      fastify.gatewayMetrics.logins.inc({ outcome: 'denied' })
      return await reply.redirect(requests.failed(pending, 'access_denied', `the identity provider did not log the user in (${query.error ?? 'no code'})`))
    }
    let result: UpstreamLogin
    try {
      result = await upstream().exchange(query.code, login.codeVerifier, login.nonce)
    } catch (err) {
      if (!(err instanceof UpstreamLoginError)) throw err
      request.log.warn({ err }, 'upstream login failed')
      fastify.gatewayMetrics.logins.inc({ outcome: 'failed' })
      return await reply.redirect(requests.failed(pending, 'server_error', 'logging in with the identity provider failed'))
    }
    const { url, admitted } = await requests.loggedIn(pending, result)
    fastify.gatewayMetrics.logins.inc({ outcome: admitted ? 'ok' : 'refused' })
    if (admitted) await flow.openSession(reply, result.identity)
    else fastify.log.info({ client: pending.clientId, route: pending.resource }, 'login refused by the allow-lists')
    return await reply.redirect(url)
  })
}
