/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose
 * client_id is an https URL is described by the JSON document at that URL.
 *
 * Fetching a URL a stranger chose is a server-side request forgery risk, so a client_id that
 * cannot be a document URL is refused before any lookup, the fetch resolves the host itself,
 * refuses every non-public address (src/oauth/public-address.ts), connects to exactly the
 * address it vetted (no second DNS answer can swap in an internal one), follows no redirects,
 * bounds size and time, and at most a few fetches run at once. What went wrong is told to the
 * log only (`detail`): the client sees one generic sentence, never an internal DNS answer.
 * `allowLoopback` admits 127.0.0.0/8 and ::1, over http too, for tests and local development.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { LookupFunction } from 'node:net'
import { Agent, request } from 'undici'
import { type ClientMetadata, validateClientMetadata } from './client-metadata.js'
import { OAuthError } from './errors.js'
import { addressProblem, isLoopbackAddress } from './public-address.js'

export interface ResolvedAddress { address: string, family: number }

export interface CimdFetchOptions {
  /** Admit loopback addresses (127.0.0.0/8, ::1), IP-literal and single-label hosts, and plain http to loopback. Tests and local dev only. */
  allowLoopback?: boolean
  /** Whole fetch, DNS to last byte. Default 5000. */
  timeoutMs?: number
  /** Default 5 KB. */
  maxBytes?: number
  /** DNS resolution; defaults to the system resolver with every address. */
  resolveHost?: (hostname: string) => Promise<ResolvedAddress[]>
}

/** A client described by its metadata document; `client_id` is the document's URL. */
export interface CimdClient extends ClientMetadata {
  client_id: string
}

export interface FetchedDocument {
  client: CimdClient
  /** How long the document may be cached, per its Cache-Control; 0 means not at all. */
  maxAgeSeconds: number
}

const DEFAULT_TIMEOUT_MS = 5000
const DEFAULT_MAX_BYTES = 5 * 1024
const DEFAULT_MAX_AGE = 5 * 60
const MAX_AGE_CAP = 24 * 60 * 60
/** Real document URLs are short; a long one is only load (and log noise). */
export const MAX_CLIENT_ID_LENGTH = 2048
const DEFAULT_MAX_CONCURRENT = 16

/** Special-use domain names (RFC 6761, 6762, 8375, 9476, ...): never a public host's name. */
const SPECIAL_USE_DOMAINS = ['localhost', 'local', 'internal', 'home.arpa', 'invalid', 'test', 'example', 'onion', 'alt']

/** A metadata document client authenticates with no shared secret (the draft forbids them). */
const CIMD_RULES = { authMethods: ['none'], defaultAuthMethod: 'none' } as const

export const DOCUMENT_UNAVAILABLE = 'The client metadata document could not be fetched.'
export const DOCUMENT_INVALID = 'The client metadata document is not valid.'

/**
 * A metadata document the gateway will not use (invalid_client). Its message is safe to show
 * anyone; `detail` may name internal addresses, DNS answers and network errors: log it, never send it.
 */
export class ClientMetadataDocumentError extends OAuthError {
  constructor (message: string, readonly detail: string) {
    super('invalid_client', message)
    this.name = 'ClientMetadataDocumentError'
  }
}

/** A fetch refused because a cap was reached (too many at once, or from one address): 429, nothing fetched. */
export class CimdLimitError extends OAuthError {
  constructor (readonly detail: string) {
    super('temporarily_unavailable', 'Too many client metadata documents are being fetched; try again in a minute.', {
      status: 429,
      headers: { 'retry-after': '60' }
    })
    this.name = 'CimdLimitError'
  }
}

function unavailable (detail: string): never {
  throw new ClientMetadataDocumentError(DOCUMENT_UNAVAILABLE, detail)
}

function invalid (detail: string): never {
  throw new ClientMetadataDocumentError(DOCUMENT_INVALID, detail)
}

/** Why `hostname` cannot name a public document host, or undefined when it can. */
function hostProblem (hostname: string): string | undefined {
  if (isIP(hostname.replace(/^\[|\]$/g, '')) !== 0) return 'must name its host, not an IP address'
  const name = hostname.replace(/\.$/, '')
  if (SPECIAL_USE_DOMAINS.some(d => name === d || name.endsWith(`.${d}`))) return 'must name a public host'
  if (!name.includes('.')) return 'must name a fully qualified host'
  return undefined
}

/** Why `id` cannot be a metadata document URL (the draft's rules, §3), or undefined when it can. */
function clientIdProblem (id: string, allowLoopback: boolean): string | undefined {
  if (id.length > MAX_CLIENT_ID_LENGTH) return `must not be longer than ${MAX_CLIENT_ID_LENGTH} characters`
  let url: URL
  try {
    url = new URL(id)
  } catch {
    return 'is not a URL'
  }
  if (url.protocol !== 'https:' && !(allowLoopback && url.protocol === 'http:')) return 'must be an https URL'
  if (id.includes('#')) return 'must not contain a fragment'
  if (url.username !== '' || url.password !== '') return 'must not contain credentials'
  if (url.pathname === '/') return 'must contain a path'
  // Checked on the raw string, since the URL parser removes them.
  if (/\/(\.|%2e){1,2}(\/|\?|$)/i.test(id)) return 'must not contain . or .. path segments'
  if (url.href !== id) return `must be written in canonical form (${url.href})`
  return allowLoopback ? undefined : hostProblem(url.hostname)
}

/**
 * Whether a client_id is meant as a metadata document URL: it has a URL scheme, which the ids
 * this gateway registers never have. Such an id is a document or nothing.
 */
export function isCimdClientId (id: string): boolean {
  return /^[a-z][a-z\d+.-]*:/i.test(id)
}

/** Refuses, before any lookup, a client_id that cannot be a metadata document URL. */
function checkClientId (id: string, allowLoopback: boolean): void {
  const problem = clientIdProblem(id, allowLoopback)
  if (problem !== undefined) throw new ClientMetadataDocumentError(`client_id ${problem}`, `client_id ${problem}`)
}

async function systemResolve (hostname: string): Promise<ResolvedAddress[]> {
  return await dnsLookup(hostname, { all: true, verbatim: true })
}

/** A `net.connect` lookup that answers with the vetted address, whatever the hostname. */
function pinnedLookup ({ address, family }: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all === true) callback(null, [{ address, family }])
    else callback(null, address, family)
  }
}

/** Cache lifetime from Cache-Control: no-store / no-cache → 0, max-age capped at a day, else 5 min. */
export function cacheLifetime (cacheControl: string | undefined): number {
  if (cacheControl === undefined) return DEFAULT_MAX_AGE
  const directives = cacheControl.toLowerCase().split(',').map(d => d.trim())
  if (directives.includes('no-store') || directives.includes('no-cache')) return 0
  const maxAge = directives.find(d => d.startsWith('max-age='))
  if (maxAge === undefined) return DEFAULT_MAX_AGE
  const seconds = Number(maxAge.slice('max-age='.length).replace(/^"|"$/g, ''))
  return Number.isInteger(seconds) && seconds >= 0 ? Math.min(seconds, MAX_AGE_CAP) : DEFAULT_MAX_AGE
}

function header (headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

/** Resolves the host and vets every address it has; returns the one to connect to. */
async function vettedAddress (url: URL, opts: CimdFetchOptions): Promise<ResolvedAddress> {
  const allowLoopback = opts.allowLoopback === true
  const literal = url.hostname.replace(/^\[|\]$/g, '')
  const family = isIP(literal)
  let addresses: ResolvedAddress[]
  if (family !== 0) {
    addresses = [{ address: literal, family }]
  } else {
    try {
      addresses = await (opts.resolveHost ?? systemResolve)(url.hostname)
    } catch (err) {
      return unavailable(`host ${url.hostname} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    if (addresses.length === 0) unavailable(`host ${url.hostname} has no address`)
  }
  // Every address is vetted, not only the first: the connection must not be able to fall back
  // to a refused one, and a host that mixes public and private answers is not a public host.
  for (const { address } of addresses) {
    const problem = addressProblem(address, allowLoopback)
    if (problem !== undefined) unavailable(`host ${url.hostname} refused: ${problem}`)
  }
  const chosen = addresses[0]
  if (url.protocol === 'http:' && !isLoopbackAddress(chosen.address)) {
    unavailable(`http is only for loopback hosts; ${url.hostname} is ${chosen.address}`)
  }
  return chosen
}

async function readBounded (body: AsyncIterable<Buffer>, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > maxBytes) unavailable(`document is larger than ${maxBytes} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Fetches and validates the metadata document at `clientId`. Every failure is a
 * ClientMetadataDocumentError (invalid_client) whose `detail` says what was wrong.
 */
export async function fetchClientMetadataDocument (clientId: string, opts: CimdFetchOptions = {}): Promise<FetchedDocument> {
  checkClientId(clientId, opts.allowLoopback === true)
  const url = new URL(clientId)
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES
  const signal = AbortSignal.timeout(timeoutMs)
  const timedOut = (): never => unavailable(`document did not arrive within ${timeoutMs} ms`)

  // DNS cannot be cancelled; the race stops waiting for it.
  const address = await Promise.race([
    vettedAddress(url, opts),
    new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
  ]).catch(err => { if (signal.aborted) timedOut(); throw err })

  const agent = new Agent({ connect: { lookup: pinnedLookup(address) } })
  try {
    const res = await request(url, {
      dispatcher: agent,
      signal,
      headers: { accept: 'application/json' }
    }).catch(err => signal.aborted ? timedOut() : unavailable(`${address.address}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`))

    // The body may be abandoned unread (a redirect, an oversized document); its abort error is expected.
    res.body.on('error', () => {})
    try {
      if (res.statusCode >= 300 && res.statusCode < 400) {
        unavailable(`answered with a redirect (HTTP ${res.statusCode}); redirects are not followed`)
      }
      if (res.statusCode !== 200) unavailable(`answered HTTP ${res.statusCode}`)
      const type = (header(res.headers, 'content-type') ?? '').split(';')[0].trim().toLowerCase()
      if (type !== 'application/json' && !type.endsWith('+json')) {
        unavailable(`document must be application/json, not ${type === '' ? 'untyped' : type}`)
      }
      const length = Number(header(res.headers, 'content-length'))
      if (length > maxBytes) unavailable(`document is larger than ${maxBytes} bytes`)
      const text = await readBounded(res.body, maxBytes).catch(err => {
        if (err instanceof OAuthError) throw err
        return signal.aborted ? timedOut() : unavailable('document could not be read')
      })

      let doc: unknown
      try {
        doc = JSON.parse(text)
      } catch {
        return invalid('document is not valid JSON')
      }
      return {
        client: validateDocument(doc, clientId),
        maxAgeSeconds: cacheLifetime(header(res.headers, 'cache-control'))
      }
    } finally {
      res.body.destroy()
    }
  } finally {
    await agent.destroy()
  }
}

function validateDocument (doc: unknown, clientId: string): CimdClient {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) invalid('document must be a JSON object')
  const fields = doc as Record<string, unknown>
  if (fields.client_id !== clientId) {
    invalid(`document's client_id (${JSON.stringify(fields.client_id)}) is not its URL ${clientId}`)
  }
  if ('client_secret' in fields || 'client_secret_expires_at' in fields) {
    invalid('document must not contain a client_secret')
  }
  try {
    return { client_id: clientId, ...validateClientMetadata(doc, CIMD_RULES) }
  } catch (err) {
    if (err instanceof OAuthError) invalid(`document: ${err.message}`)
    throw err
  }
}

export interface ClientMetadataDocumentsOptions extends CimdFetchOptions {
  /** Documents kept at most (least recently used dropped first). Default 1000. */
  maxEntries?: number
  /** Fetches running at once at most (per process); past it a lookup fails with CimdLimitError. Default 16. */
  maxConcurrent?: number
  /** Clock in ms, for tests. */
  now?: () => number
  /** Runs each fetch (not the cache hits); tracing puts a span around it. */
  aroundFetch?: <T>(clientId: string, fetch: () => Promise<T>) => Promise<T>
}

/**
 * Metadata documents with an in-process cache bounded in size (LRU) and honouring each
 * document's Cache-Control. Concurrent lookups of one URL share a single fetch, and no more than
 * `maxConcurrent` fetches run at once.
 */
export class ClientMetadataDocuments {
  readonly #opts: ClientMetadataDocumentsOptions
  readonly #cache = new Map<string, { client: CimdClient, expiresAt: number }>()
  readonly #inFlight = new Map<string, Promise<CimdClient>>()
  #running = 0

  constructor (opts: ClientMetadataDocumentsOptions = {}) {
    this.#opts = opts
  }

  /**
   * The document at `clientId`, from the cache or fetched. `admit` runs only when this lookup
   * would start a fetch (a per-requester cap); it rejects to refuse it.
   */
  async get (clientId: string, admit?: () => Promise<void>): Promise<CimdClient> {
    checkClientId(clientId, this.#opts.allowLoopback === true)
    const now = this.#opts.now ?? Date.now
    const hit = this.#cache.get(clientId)
    if (hit !== undefined) {
      this.#cache.delete(clientId)
      if (hit.expiresAt > now()) {
        this.#cache.set(clientId, hit) // most recently used goes last
        return hit.client
      }
    }
    let pending = this.#inFlight.get(clientId)
    if (pending === undefined) {
      pending = this.#fetch(clientId, now, admit).finally(() => this.#inFlight.delete(clientId))
      this.#inFlight.set(clientId, pending)
    }
    return await pending
  }

  async #fetch (clientId: string, now: () => number, admit: (() => Promise<void>) | undefined): Promise<CimdClient> {
    const maxConcurrent = this.#opts.maxConcurrent ?? DEFAULT_MAX_CONCURRENT
    if (this.#running >= maxConcurrent) throw new CimdLimitError(`${maxConcurrent} fetches are already running`)
    this.#running++
    try {
      await admit?.()
      const fetch = async (): Promise<FetchedDocument> => await fetchClientMetadataDocument(clientId, this.#opts)
      const { client, maxAgeSeconds } = await (this.#opts.aroundFetch?.(clientId, fetch) ?? fetch())
      if (maxAgeSeconds > 0) {
        this.#cache.set(clientId, { client, expiresAt: now() + maxAgeSeconds * 1000 })
        const maxEntries = this.#opts.maxEntries ?? 1000
        if (this.#cache.size > maxEntries) this.#cache.delete(this.#cache.keys().next().value as string)
      }
      return client
    } finally {
      this.#running--
    }
  }
}
