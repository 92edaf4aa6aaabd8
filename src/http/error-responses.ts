/**
 * The error model's two authorization-server surfaces, as pure functions from a thrown value to
 * what is sent: RFC 6749 §5.2 JSON for the OAuth endpoints, an HTML page where a browser
 * navigated. Wire text is generic where detail would help an attacker or reveal internals; the
 * detail goes to the log (`logged`). The proxy's surface is the proxy's own (src/proxy).
 */
import { ErrorPage, OAuthError } from '../oauth/errors.js'
import { StoreError } from '../store/store-errors.js'

export interface ErrorResponse {
  status: number
  headers: Record<string, string>
  /** RFC 6749 §5.2 body. */
  body: { error: string, error_description: string }
  /** What the log says beyond the response; undefined: nothing worth a line. */
  logged?: { level: 'info' | 'warn' | 'error', message: string, cause?: unknown }
}

/** Fastify's own errors carry an HTTP status (bad JSON 400, too large 413, rate limit 429, media type 415). */
interface HttpStatusError extends Error { statusCode?: number }

/**
 * RFC 6749 names no code for these statuses; they keep their status and get the closest code
 * (429: `temporarily_unavailable`, as the client metadata document cap answers; 415: an
 * extension code naming it, RFC 6749 §8.5) rather than `invalid_request`, which says the
 * parameters were wrong when they were not.
 */
const CODE_BY_STATUS: Record<number, string> = {
  415: 'unsupported_media_type',
  429: 'temporarily_unavailable'
}

export function oauthErrorResponse (error: unknown): ErrorResponse {
  if (error instanceof OAuthError) {
    return {
      status: error.statusCode,
      headers: error.headers,
      body: error.toJSON(),
      logged: error.statusCode >= 500 || error.description !== error.message
        ? { level: error.statusCode >= 500 ? 'warn' : 'info', message: error.message, cause: error.cause }
        : undefined
    }
  }
  if (error instanceof StoreError) {
    return {
      status: error.statusCode,
      headers: { 'retry-after': String(error.retryAfterSeconds) },
      body: { error: 'temporarily_unavailable', error_description: error.message },
      logged: { level: 'warn', message: error.reason, cause: error.cause ?? error }
    }
  }
  const status = (error as HttpStatusError).statusCode ?? 500
  if (status < 500) {
    return { status, headers: {}, body: { error: CODE_BY_STATUS[status] ?? 'invalid_request', error_description: (error as Error).message } }
  }
  return {
    status: 500,
    headers: {},
    body: { error: 'server_error', error_description: 'Internal error' },
    logged: { level: 'error', message: 'unhandled error', cause: error }
  }
}

/** The same errors as a page (the browser navigated here): never a redirect, never internals. */
export function errorPageFor (error: unknown): { page: ErrorPage, logged?: ErrorResponse['logged'] } {
  if (error instanceof ErrorPage) return { page: error }
  const response = oauthErrorResponse(error)
  const title = response.status >= 500 ? 'Try again shortly' : 'Request refused'
  return { page: new ErrorPage(title, response.body.error_description, response.status, response.headers), logged: response.logged }
}
