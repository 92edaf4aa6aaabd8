/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose
 * client_id is an https URL is described by the JSON document at that URL.
 *
 * Fetching a URL a stranger chose is a server-side request forgery risk, so the fetch resolves
 * the host itself, refuses every non-public address, connects to exactly the address it vetted
 * (no second DNS answer can swap in an internal one), follows no redirects, and bounds size and
 * time. `allowLoopback` admits 127.0.0.0/8 and ::1, over http too, for tests and local development.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import type { LookupFunction } from 'node:net'
import { Agent, request } from 'undici'
import { type ClientMetadata, validateClientMetadata } from './client-metadata.js'
import { OAuthError } from './errors.js'

export interface ResolvedAddress { address: string, family: number }

export interface CimdFetchOptions {
  /** Admit loopback addresses (127.0.0.0/8, ::1) and plain http to them. Tests and local dev only. */
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

/** A metadata document's client authenticates with no shared secret (the draft forbids them). */
const CIMD_RULES = { authMethods: ['none'], defaultAuthMethod: 'none' } as const

function refuse (description: string): never {
  throw new OAuthError('invalid_client', description)
}

/** Why `id` cannot be a metadata document URL, or undefined when it can. */
function clientIdProblem (id: string, allowLoopback: boolean): string | undefined {
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
  return undefined
}

/** Whether a client_id is a URL naming its metadata document (else it is a registered id). */
export function isCimdClientId (id: string, allowLoopback = false): boolean {
  return clientIdProblem(id, allowLoopback) === undefined
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

// Checked on IPv6 addresses only: BlockList matches IPv4 addresses against ::ffff:0:0/96 rules.
const IPV4_MAPPED = new BlockList()
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6')

/** Special-purpose ranges (RFC 6890 and its updates) other than loopback: never public hosts. */
const NOT_PUBLIC = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
] as const) NOT_PUBLIC.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 32], ['2001:db8::', 32], ['2002::', 16],
  ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8]
] as const) NOT_PUBLIC.addSubnet(net, prefix, 'ipv6')

/** Why the document host's address may not be contacted, or undefined when it may. */
function addressProblem ({ address, family }: ResolvedAddress, allowLoopback: boolean): string | undefined {
  const type = family === 6 ? 'ipv6' : 'ipv4'
  if (type === 'ipv6' && IPV4_MAPPED.check(address, 'ipv6')) return `${address} is an IPv4-mapped IPv6 address`
  if (LOOPBACK.check(address, type)) return allowLoopback ? undefined : `${address} is a loopback address`
  if (NOT_PUBLIC.check(address, type)) return `${address} is a private or reserved address`
  return undefined
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
      return refuse(`client metadata document host ${url.hostname} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    if (addresses.length === 0) refuse(`client metadata document host ${url.hostname} has no address`)
  }
  // Every address is vetted, not only the first: the connection must not be able to fall back
  // to a refused one, and a host that mixes public and private answers is not a public host.
  for (const address of addresses) {
    const problem = addressProblem(address, allowLoopback)
    if (problem !== undefined) refuse(`client metadata document host ${url.hostname} refused: ${problem}`)
  }
  const chosen = addresses[0]
  if (url.protocol === 'http:' && !LOOPBACK.check(chosen.address, chosen.family === 6 ? 'ipv6' : 'ipv4')) {
    refuse('client_id must be an https URL')
  }
  return chosen
}

async function readBounded (body: AsyncIterable<Buffer>, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > maxBytes) refuse(`client metadata document is larger than ${maxBytes} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Fetches and validates the metadata document at `clientId`.
 * Every failure is `invalid_client` with a description of what was wrong.
 */
export async function fetchClientMetadataDocument (clientId: string, opts: CimdFetchOptions = {}): Promise<FetchedDocument> {
  const problem = clientIdProblem(clientId, opts.allowLoopback === true)
  if (problem !== undefined) refuse(`client_id ${problem}`)
  const url = new URL(clientId)
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES
  const signal = AbortSignal.timeout(timeoutMs)
  const timedOut = (): never => refuse(`client metadata document did not arrive within ${timeoutMs} ms`)

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
    }).catch(err => signal.aborted ? timedOut() : refuse(`client metadata document could not be fetched (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`))

    // The body may be abandoned unread (a redirect, an oversized document); its abort error is expected.
    res.body.on('error', () => {})
    try {
      if (res.statusCode >= 300 && res.statusCode < 400) {
        refuse(`client metadata document answered with a redirect (HTTP ${res.statusCode}); redirects are not followed`)
      }
      if (res.statusCode !== 200) refuse(`client metadata document answered HTTP ${res.statusCode}`)
      const type = (header(res.headers, 'content-type') ?? '').split(';')[0].trim().toLowerCase()
      if (type !== 'application/json' && !type.endsWith('+json')) {
        refuse(`client metadata document must be application/json, not ${type === '' ? 'untyped' : type}`)
      }
      const length = Number(header(res.headers, 'content-length'))
      if (length > maxBytes) refuse(`client metadata document is larger than ${maxBytes} bytes`)
      const text = await readBounded(res.body, maxBytes).catch(err => {
        if (err instanceof OAuthError) throw err
        return signal.aborted ? timedOut() : refuse('client metadata document could not be read')
      })

      let doc: unknown
      try {
        doc = JSON.parse(text)
      } catch {
        return refuse('client metadata document is not valid JSON')
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
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) refuse('client metadata document must be a JSON object')
  const fields = doc as Record<string, unknown>
  if (fields.client_id !== clientId) {
    refuse(`client metadata document's client_id (${JSON.stringify(fields.client_id)}) is not its URL ${clientId}`)
  }
  if ('client_secret' in fields || 'client_secret_expires_at' in fields) {
    refuse('client metadata document must not contain a client_secret')
  }
  try {
    return { client_id: clientId, ...validateClientMetadata(doc, CIMD_RULES) }
  } catch (err) {
    if (err instanceof OAuthError) refuse(`client metadata document: ${err.message}`)
    throw err
  }
}

export interface ClientMetadataDocumentsOptions extends CimdFetchOptions {
  /** Documents kept at most (least recently used dropped first). Default 1000. */
  maxEntries?: number
  /** Clock in ms, for tests. */
  now?: () => number
}

/**
 * Metadata documents with an in-process cache bounded in size (LRU) and honouring each
 * document's Cache-Control. Concurrent lookups of one URL share a single fetch.
 */
export class ClientMetadataDocuments {
  readonly #opts: ClientMetadataDocumentsOptions
  readonly #cache = new Map<string, { client: CimdClient, expiresAt: number }>()
  readonly #inFlight = new Map<string, Promise<CimdClient>>()

  constructor (opts: ClientMetadataDocumentsOptions = {}) {
    this.#opts = opts
  }

  async get (clientId: string): Promise<CimdClient> {
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
      pending = this.#fetch(clientId, now).finally(() => this.#inFlight.delete(clientId))
      this.#inFlight.set(clientId, pending)
    }
    return await pending
  }

  async #fetch (clientId: string, now: () => number): Promise<CimdClient> {
    const { client, maxAgeSeconds } = await fetchClientMetadataDocument(clientId, this.#opts)
    if (maxAgeSeconds > 0) {
      this.#cache.set(clientId, { client, expiresAt: now() + maxAgeSeconds * 1000 })
      const maxEntries = this.#opts.maxEntries ?? 1000
      if (this.#cache.size > maxEntries) this.#cache.delete(this.#cache.keys().next().value as string)
    }
    return client
  }
}
