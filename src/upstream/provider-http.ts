/**
 * Calls to the identity provider, bounded in time and size: openid-client's requests go through
 * `boundedFetch`, GitHub's API calls through `callProvider`. No redirects are followed.
 */
import type { CustomFetchOptions } from 'openid-client'
import { isLoopbackUri } from '../oauth/redirect-uri.js'
import { UpstreamLoginError } from './provider.js'

export const PROVIDER_TIMEOUT_SECONDS = 10
const MAX_BYTES = 256 * 1024

/** http is for a provider on the gateway's own machine only. */
export function isLoopbackHttp (url: URL): boolean {
  return url.protocol === 'http:' && isLoopbackUri(url.href)
}

/** fetch whose answer is read whole, up to 256 KiB: a provider cannot make the gateway buffer without end. */
export async function boundedFetch (url: string, init: RequestInit | CustomFetchOptions): Promise<Response> {
  // openid-client's bodies (string, URLSearchParams, bytes) are all ones fetch takes.
  const res = await fetch(url, init as RequestInit)
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = res.body?.getReader()
  for (let read = await reader?.read(); read !== undefined && !read.done; read = await reader?.read()) {
    size += read.value.length
    if (size > MAX_BYTES) {
      await reader?.cancel()
      throw new UpstreamLoginError(`${new URL(url).host} answered more than ${MAX_BYTES} bytes`)
    }
    chunks.push(read.value)
  }
  return new Response(res.status === 204 || res.status === 304 ? null : Buffer.concat(chunks), { status: res.status, statusText: res.statusText, headers: res.headers })
}

/**
 * What went wrong, for the log: openid-client's message and its direct cause's, never the
 * cause's own details (they may hold the provider's response: tokens, claims).
 */
export function describeProviderError (err: unknown): string {
  if (err instanceof UpstreamLoginError) return err.message
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  const { error } = err as { error?: unknown }
  const oauthError = typeof error === 'string' ? ` (${error})` : ''
  return `${err.message}${oauthError}${cause}`
}

interface CallInit { headers?: Record<string, string>, form?: Record<string, string> }

/** GET (or POST a form) to the provider; a JSON object back. */
export async function callProvider (url: string, init: CallInit = {}): Promise<Record<string, unknown>> {
  const body = await callProviderJson(url, init)
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UpstreamLoginError(`${new URL(url).host} answered unexpected JSON`)
  return body as Record<string, unknown>
}

/** Any JSON value back (GitHub's email list is an array). */
export async function callProviderJson (url: string, init: CallInit = {}): Promise<unknown> {
  const host = new URL(url).host
  const res = await boundedFetch(url, {
    method: init.form !== undefined ? 'POST' : 'GET',
    headers: {
      accept: 'application/json',
      'user-agent': 'mcp-gateway',
      ...(init.form !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      ...init.headers
    },
    body: init.form !== undefined ? new URLSearchParams(init.form).toString() : undefined,
    redirect: 'manual',
    signal: AbortSignal.timeout(PROVIDER_TIMEOUT_SECONDS * 1000)
  }).catch(err => {
    if (err instanceof UpstreamLoginError) throw err
    throw new UpstreamLoginError(`${host} could not be reached`, { cause: err })
  })
  let body: unknown
  try {
    body = JSON.parse(await res.text())
  } catch {
    throw new UpstreamLoginError(`${host} answered HTTP ${res.status} without JSON`)
  }
  // GitHub answers token errors with HTTP 200 and an `error` field.
  const error = (body as { error?: unknown } | null)?.error
  if (res.status !== 200 || typeof error === 'string') {
    const why = typeof error === 'string' ? `: ${error}` : ''
    throw new UpstreamLoginError(`${host} answered HTTP ${res.status}${why}`, { refused: typeof error === 'string' && res.status < 500 })
  }
  return body
}
