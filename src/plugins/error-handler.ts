import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import { renderErrorPage } from '../oauth/consent-page.js'
import { ErrorPage } from '../oauth/errors.js'
import { sendHtmlPage } from '../http/html-page.js'
import { errorPageFor, oauthErrorResponse, type ErrorResponse } from '../http/error-responses.js'
import { logFields } from '../request-log.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Errors on this route are shown as HTML pages (the browser navigated here), never JSON. */
    browserPage?: boolean
  }
}

function log (request: FastifyRequest, logged: ErrorResponse['logged']): void {
  if (logged === undefined) return
  request.log[logged.level]({ ...logFields(request), err: logged.cause }, logged.message)
}

/**
 * The one error handler: the mappers in http/error-responses.ts decide what is sent (OAuth JSON,
 * or a page on routes a browser opens); this adapter logs their detail and sends it.
 */
async function errorHandlerPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.setErrorHandler(async function handleError (error: Error, request, reply) {
    // Fastify closes the connection on a body it did not read; the client, still uploading, gets
    // a reset that can overtake the 413. Kept open, Node reads and drops the rest (bounded by
    // REQUEST_TIMEOUT_MS) and the answer arrives.
    if ((error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') reply.removeHeader('connection')
    if (error instanceof ErrorPage || request.routeOptions.config.browserPage === true) {
      const { page, logged } = errorPageFor(error)
      log(request, logged)
      return await sendHtmlPage(reply.headers(page.headers), page.statusCode, nonce => renderErrorPage(page.title, page.message, nonce))
    }
    const response = oauthErrorResponse(error)
    log(request, response.logged)
    return await reply.code(response.status).headers(response.headers).send(response.body)
  })

  fastify.setNotFoundHandler(async function notFound (request, reply) {
    return await reply.code(404).send({ error: 'not_found', error_description: `No route for ${request.method} ${request.url.split('?')[0]}` })
  })
}

export default fp(errorHandlerPlugin, { name: 'error-handler', fastify: '5.x' })
