/**
 * OAuth errors as typed values, free of HTTP frameworks: the rules and services throw them and
 * the mappers in src/http/error-responses.ts turn them into responses, so no route formats errors.
 */

/** RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8707 §2, RFC 6750 §3.1 codes, plus the gateway's own. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'invalid_token'
  | 'insufficient_scope'

const DEFAULT_STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  unsupported_response_type: 400,
  unsupported_token_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  access_denied: 403,
  server_error: 500,
  temporarily_unavailable: 503,
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
  invalid_token: 401,
  insufficient_scope: 403
}

export interface OAuthErrorOptions {
  status?: number
  /** Extra response headers (e.g. WWW-Authenticate, Retry-After). */
  headers?: Record<string, string>
  /** A short machine label for metrics (e.g. why a token was refused). */
  reason?: string
  /**
   * What the client is told instead of the message, when the message would tell it too much
   * (whether a client exists): the message then goes to the log only.
   */
  publicDescription?: string
}

export class OAuthError extends Error {
  readonly code: OAuthErrorCode
  readonly statusCode: number
  readonly headers: Record<string, string>
  readonly reason: string
  readonly description: string

  constructor (code: OAuthErrorCode, description: string, opts: OAuthErrorOptions = {}) {
    super(description)
    this.name = 'OAuthError'
    this.code = code
    this.statusCode = opts.status ?? DEFAULT_STATUS[code]
    this.headers = opts.headers ?? {}
    this.reason = opts.reason ?? code
    this.description = opts.publicDescription ?? description
  }

  toJSON (): { error: OAuthErrorCode, error_description: string } {
    return { error: this.code, error_description: this.description }
  }
}

/** A browser-facing failure that must be shown as a page, never turned into a redirect. */
export class ErrorPage extends Error {
  readonly statusCode: number
  constructor (readonly title: string, message: string, statusCode = 400, readonly headers: Record<string, string> = {}) {
    super(message)
    this.name = 'ErrorPage'
    this.statusCode = statusCode
  }
}
