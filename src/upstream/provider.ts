/**
 * The upstream identity provider the gateway logs users in with (Google, any OIDC provider,
 * GitHub). The gateway speaks to it as one fixed confidential client.
 *
 * Why not @fastify/oauth2: it keeps the state and the PKCE verifier in browser cookies and
 * checks them itself, while the gateway's upstream state must be server-side, single-use and
 * shared by every replica (the callback may land on another one). Its token call is a plain
 * form POST, which undici does here directly.
 */
import { request } from 'undici'
import type { UpstreamIdentity } from '../oauth/allow-list.js'

export interface UpstreamTokens {
  access_token: string
  refresh_token?: string
  id_token?: string
  /** Seconds since the epoch. */
  expires_at?: number
  scope?: string
}

export interface UpstreamLogin {
  identity: UpstreamIdentity
  tokens: UpstreamTokens
}

export interface LoginStart {
  state: string
  nonce: string
  codeChallenge: string
  /** No upstream refresh token is held for this user yet: ask for offline access again. */
  offlineConsent: boolean
  /** The one allowed email domain, when there is exactly one (Google's `hd`). */
  domainHint?: string
}

export interface UpstreamProvider {
  readonly name: 'google' | 'oidc' | 'github'
  /** Origin of the login page: the consent form's answer redirects there. */
  readonly loginOrigin: string
  authorizationUrl: (start: LoginStart) => string
  /** Redeems the upstream code and proves who logged in; throws UpstreamLoginError. */
  exchange: (code: string, codeVerifier: string, nonce: string) => Promise<UpstreamLogin>
  /** A fresh access token for a held refresh token; throws UpstreamLoginError (`refused` when the grant is gone). */
  refresh: (refreshToken: string) => Promise<UpstreamTokens>
}

export interface UpstreamClient {
  clientId: string
  clientSecret: string
  redirectUri: string
  scopes: string[]
}

/** The provider failed or answered something that proves nothing; the user sees why on a page. */
export class UpstreamLoginError extends Error {
  /** The provider answered with an OAuth error (revoked or expired grant), not an outage. */
  readonly refused: boolean
  constructor (message: string, options?: { cause?: unknown, refused?: boolean }) {
    super(message, options)
    this.name = 'UpstreamLoginError'
    this.refused = options?.refused ?? false
  }
}

const TIMEOUT_MS = 10_000
const MAX_BYTES = 256 * 1024

interface CallInit { headers?: Record<string, string>, form?: Record<string, string> }

/** GET (or POST a form) to the provider; a JSON object back, bounded in time and size. */
export async function callProvider (url: string, init: CallInit = {}): Promise<Record<string, unknown>> {
  const body = await callProviderJson(url, init)
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UpstreamLoginError(`${new URL(url).host} answered unexpected JSON`)
  return body as Record<string, unknown>
}

/** Any JSON value back (GitHub's email list is an array). */
export async function callProviderJson (url: string, init: CallInit = {}): Promise<unknown> {
  const res = await request(url, {
    method: init.form !== undefined ? 'POST' : 'GET',
    headers: {
      accept: 'application/json',
      'user-agent': 'mcp-gateway',
      ...(init.form !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      ...init.headers
    },
    body: init.form !== undefined ? new URLSearchParams(init.form).toString() : undefined,
    headersTimeout: TIMEOUT_MS,
    bodyTimeout: TIMEOUT_MS
  }).catch(err => { throw new UpstreamLoginError(`${new URL(url).host} could not be reached`, { cause: err }) })
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BYTES) {
      res.body.destroy()
      throw new UpstreamLoginError(`${new URL(url).host} answered more than ${MAX_BYTES} bytes`)
    }
    chunks.push(chunk)
  }
  let body: unknown
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new UpstreamLoginError(`${new URL(url).host} answered HTTP ${res.statusCode} without JSON`)
  }
  // GitHub answers token errors with HTTP 200 and an `error` field.
  const error = (body as { error?: unknown } | null)?.error
  if (res.statusCode !== 200 || typeof error === 'string') {
    const why = typeof error === 'string' ? `: ${error}` : ''
    throw new UpstreamLoginError(`${new URL(url).host} answered HTTP ${res.statusCode}${why}`, { refused: typeof error === 'string' && res.statusCode < 500 })
  }
  return body
}

/** The token response's fields the gateway keeps. */
export function upstreamTokens (body: Record<string, unknown>): UpstreamTokens {
  if (typeof body.access_token !== 'string') throw new UpstreamLoginError('the token response has no access_token')
  const str = (v: unknown): string | undefined => typeof v === 'string' && v !== '' ? v : undefined
  return {
    access_token: body.access_token,
    refresh_token: str(body.refresh_token),
    id_token: str(body.id_token),
    expires_at: typeof body.expires_in === 'number' ? Math.floor(Date.now() / 1000) + body.expires_in : undefined,
    scope: str(body.scope)
  }
}

export function withQuery (endpoint: string, params: Record<string, string | undefined>): string {
  const url = new URL(endpoint)
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value)
  return url.href
}
