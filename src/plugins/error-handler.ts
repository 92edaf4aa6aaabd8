import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { ErrorPage, OAuthError } from '../oauth/errors.js'
import { renderErrorPage } from '../oauth/consent-page.js'
import { sendHtmlPage } from '../http/html-page.js'
import { logFields } from '../request-log.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Errors on this route are shown as HTML pages (the browser navigated here), never JSON. */
    browserPage?: boolean
  }
}

/**
 * The one error handler: typed OAuth errors become their RFC 6749-style JSON with their
 * status and headers; Fastify's own 4xx (bad JSON, too large, wrong content type) become
 * `invalid_request`; browser-facing ErrorPages become HTML (never a redirect); anything else is
 * logged and answered 500 without internals.
 */
async function errorHandlerPlugin (fastify: FastifyInstance): Promise<void> {
  const sendPage = async (reply: FastifyReply, page: ErrorPage): Promise<FastifyReply> =>
    await sendHtmlPage(reply.headers(page.headers), page.statusCode, nonce => renderErrorPage(page.title, page.message, nonce))

  fastify.setErrorHandler(async function handleError (error: FastifyError | OAuthError | ErrorPage, request, reply) {
    if (error instanceof ErrorPage) return await sendPage(reply, error)
    // A page a browser opens (route config `browserPage`) answers a refusal or a busy store with a page.
    const page = request.routeOptions.config.browserPage === true
    if (error instanceof OAuthError) {
      if (error.statusCode >= 500) request.log.warn({ ...logFields(request), err: error.cause ?? error }, error.message)
      if (page) return await sendPage(reply, new ErrorPage(error.statusCode >= 500 ? 'Try again shortly' : 'Request refused', error.message, error.statusCode, error.headers))
      return await reply.code(error.statusCode).headers(error.headers).send(error.toJSON())
    }
    const status = (error as FastifyError).statusCode ?? 500
    // Fastify closes the connection on a body it did not read; the client, still uploading, gets
    // a reset that can overtake the 413. Kept open, Node reads and drops the rest (bounded by
    // REQUEST_TIMEOUT_MS) and the answer arrives.
    if ((error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') reply.removeHeader('connection')
    if (status < 500) {
      if (page) return await sendPage(reply, new ErrorPage('Request refused', error.message, status))
      return await reply.code(status).send({ error: 'invalid_request', error_description: error.message })
    }
    request.log.error({ ...logFields(request), err: error }, 'unhandled error')
    return await reply.code(500).send({ error: 'server_error', error_description: 'Internal error' })
  })

  fastify.setNotFoundHandler(async function notFound (request, reply) {
    return await reply.code(404).send({ error: 'not_found', error_description: `No route for ${request.method} ${request.url.split('?')[0]}` })
  })
}

export default fp(errorHandlerPlugin, { name: 'error-handler', fastify: '5.x' })
