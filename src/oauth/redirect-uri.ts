/**
 * Redirect URI rules (OAuth 2.1 §2.3.1, RFC 8252 for native apps): which URIs a client may
 * register, and whether the URI of an authorization request is one of them.
 */
import { OAuthError } from './errors.js'

const MAX_REDIRECT_URI_LENGTH = 2000

/** RFC 8252 §7.3, §8.3: loopback redirect hosts. `localhost` is kept because MCP clients use it. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost'])

/**
 * Schemes that are not private-use (RFC 8252 §7.1) and would run, read or reach something other
 * than the client app; the web schemes are handled on their own.
 */
const FORBIDDEN_SCHEMES = new Set([
  'javascript:', 'data:', 'file:', 'vbscript:', 'blob:', 'about:', 'filesystem:',
  'ftp:', 'ws:', 'wss:', 'mailto:', 'tel:', 'sms:'
])

/**
 * Checks a redirect URI a client registers (DCR or a metadata document).
 * Throws `invalid_redirect_uri` with the reason.
 */
export function validateRedirectUriForRegistration (uri: unknown): string {
  if (typeof uri !== 'string' || uri === '') {
    throw new OAuthError('invalid_redirect_uri', 'redirect_uris entries must be non-empty strings')
  }
  if (uri.length > MAX_REDIRECT_URI_LENGTH) {
    throw new OAuthError('invalid_redirect_uri', `redirect URI longer than ${MAX_REDIRECT_URI_LENGTH} characters`)
  }
  const fail = (why: string): never => { throw new OAuthError('invalid_redirect_uri', `${uri}: ${why}`) }
  // Checked on the raw string: URL parsing would drop an empty "#".
  if (uri.includes('#')) fail('a redirect URI must not contain a fragment')
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return fail('not an absolute URI')
  }
  if (url.username !== '' || url.password !== '') fail('a redirect URI must not contain credentials')

  if (url.protocol === 'https:') return uri
  if (url.protocol === 'http:') {
    if (LOOPBACK_HOSTS.has(url.hostname)) return uri
    return fail('http is only allowed on loopback hosts (127.0.0.1, [::1], localhost); use https')
  }
  if (FORBIDDEN_SCHEMES.has(url.protocol)) fail(`the ${url.protocol} scheme is not allowed`)
  // A private-use scheme (cursor://, vscode://, com.example.app:/) for a native app.
  return uri
}

/** An http URI on a loopback host, split into host and everything after the port. */
const LOOPBACK_HTTP = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(?::\d{1,5})?([/?].*)?$/

/**
 * The registered URI that the requested one matches, or undefined.
 * Exact string comparison (no normalisation: OAuth 2.1 §4.1.1), except that on loopback hosts
 * the port may differ, because native apps get an ephemeral port (RFC 8252 §7.3).
 */
export function matchRedirectUri (requested: string, registered: readonly string[]): string | undefined {
  if (registered.includes(requested)) return requested
  const req = LOOPBACK_HTTP.exec(requested)
  if (req === null) return undefined
  return registered.find(candidate => {
    const reg = LOOPBACK_HTTP.exec(candidate)
    return reg !== null && reg[1] === req[1] && (reg[2] ?? '') === (req[2] ?? '')
  })
}

/**
 * Whether a URI points at the user's own machine: any program there could be listening, so the
 * consent page warns about it.
 */
export function isLoopbackUri (uri: string): boolean {
  try {
    const url = new URL(uri)
    return (url.protocol === 'http:' || url.protocol === 'https:') && LOOPBACK_HOSTS.has(url.hostname)
  } catch {
    return false
  }
}
