import type { ClientConfig } from '../config/config-file.js'
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import { verifyClientAssertion } from '../oauth/client-assertion.js'
import { authenticateClient, type ClientAuthentication } from '../oauth/client-auth.js'
import { generateClientCredentials, type ClientMetadata, type GrantType, type TokenEndpointAuthMethod } from '../oauth/client-metadata.js'
import { CimdLimitError, ClientMetadataDocumentError, ClientMetadataDocuments, isCimdClientId } from '../oauth/cimd.js'
import { ErrorPage, OAuthError } from '../oauth/errors.js'
import { hashSecret } from '../oauth/secrets.js'
import { useIpQuota } from '../store/ip-quota.js'
import { CLIENT_TTL_SECONDS, KEY_KINDS } from '../store/storage-schema.js'
import type { ServiceDeps } from './service-deps.js'
import { useOnce } from './single-use.js'

/** Any client the gateway knows, whichever way it became known. */
export interface KnownClient {
  client_id: string
  redirect_uris: string[]
  client_name?: string
  grant_types: GrantType[]
  token_endpoint_auth_method: TokenEndpointAuthMethod
  client_secret_hash?: string
  client_id_issued_at?: number
  /** Pre-registered machine clients: the routes client_credentials may name, and the scopes there (undefined: the route's own). */
  allowed_routes?: string[]
  allowed_scopes?: string[]
}

export interface Registration {
  client: KnownClient & { client_id_issued_at: number }
  /** Shown once, in the registration response; only its hash is kept. */
  clientSecret?: string
}

/** Who asks: the address a metadata document fetch is charged to, and the log that says why one was refused. */
export interface Requester {
  ip: string
  log: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void }
}

export type FindClient = (clientId: string) => Promise<KnownClient | undefined>

export interface Clients {
  /**
   * Pre-registered (config.yaml), then metadata document (a client_id with a URL scheme), then
   * registered (DCR). Without a requester, document fetches are capped only globally.
   */
  find: (clientId: string, requester?: Requester) => Promise<KnownClient | undefined>
  /** `find` for a browser-facing request: a reached fetch cap is a 429 page. */
  findForPage: (requester: Requester) => FindClient
  /** Counted against the address's daily quota (after validation: a malformed request costs nothing). */
  register: (metadata: ClientMetadata, ip: string) => Promise<Registration>
  /** The client the credentials prove; throws invalid_client. */
  authenticate: (auth: ClientAuthentication, requester?: Requester) => Promise<KnownClient>
}

export interface ClientsOptions {
  /** Runs each metadata document fetch (tracing puts a span around it). */
  aroundFetch?: <T>(clientId: string, fetch: () => Promise<T>) => Promise<T>
}

/**
 * Metadata documents one client address (an IPv4 address or an IPv6 /64) may have fetched, kept
 * in the store so the cap holds across replicas. Cache hits and joins to a running fetch of the
 * same URL are free.
 */
export const CIMD_FETCHES_PER_ADDRESS = { name: 'cimd-fetches', max: 10, windowSeconds: 60 }

/**
 * Registrations live 90 days, so a per-minute rate limit alone still lets one address fill the
 * store with 86,400 clients a day: a daily quota per address (REGISTRATIONS_PER_IP_PER_DAY),
 * counted in the store so that every replica shares it.
 */
const REGISTRATION_WINDOW_SECONDS = 24 * 60 * 60

/** Enough to recognise a client in the log; a refused id may be kilobytes long. */
const LOGGED_CLIENT_ID_LENGTH = 300

function fromConfig (entry: ClientConfig): KnownClient {
  return {
    client_id: entry.clientId,
    redirect_uris: entry.redirectUris,
    client_name: entry.clientName,
    grant_types: entry.grantTypes,
    token_endpoint_auth_method: entry.authMethod,
    client_secret_hash: entry.clientSecret !== undefined ? hashSecret(entry.clientSecret) : undefined,
    allowed_routes: entry.routes,
    allowed_scopes: entry.scopes
  }
}

/** The public keys of each private_key_jwt client: inline, or fetched (5 s at most, cached, no redirects). */
function assertionKeys (clients: ClientConfig[]): Map<string, JWTVerifyGetKey> {
  const keys = new Map<string, JWTVerifyGetKey>()
  for (const c of clients) {
    if (c.jwks !== undefined) keys.set(c.clientId, createLocalJWKSet(c.jwks as unknown as JSONWebKeySet))
    else if (c.jwksUri !== undefined) keys.set(c.clientId, createRemoteJWKSet(new URL(c.jwksUri), { timeoutDuration: 5000 }))
  }
  return keys
}

/** The clients the authorization server knows: pre-registered, metadata documents, registered. */
export function createClients ({ store, records, clock, config, log }: ServiceDeps, options: ClientsOptions = {}): Clients {
  const preRegistered = new Map(config.clients.map(c => [c.clientId, fromConfig(c)]))
  const keysOf = assertionKeys(config.clients)
  const base = config.env.BASE_URL
  const documents = new ClientMetadataDocuments({ allowLoopback: config.env.CIMD_ALLOW_LOOPBACK, aroundFetch: options.aroundFetch, now: clock.now })
  const kind = KEY_KINDS.client

  async function metadataDocument (clientId: string, requester: Requester | undefined): Promise<KnownClient> {
    const admit = requester === undefined
      ? undefined
      : async () => {
        if (!(await useIpQuota(store, CIMD_FETCHES_PER_ADDRESS, requester.ip)).allowed) {
          throw new CimdLimitError(`${requester.ip} had ${CIMD_FETCHES_PER_ADDRESS.max} documents fetched within a minute`)
        }
      }
    try {
      return await documents.get(clientId, admit)
    } catch (err) {
      // The client is told one generic sentence; why (addresses, DNS answers) is for the operator.
      const logged = { clientId: clientId.slice(0, LOGGED_CLIENT_ID_LENGTH), reason: (err as { detail?: string }).detail }
      if (err instanceof ClientMetadataDocumentError) (requester?.log ?? log).info(logged, 'client metadata document refused')
      if (err instanceof CimdLimitError) (requester?.log ?? log).warn(logged, 'client metadata document not fetched: cap reached')
      throw err
    }
  }

  async function find (clientId: string, requester?: Requester): Promise<KnownClient | undefined> {
    const known = preRegistered.get(clientId)
    if (known !== undefined) return known
    if (isCimdClientId(clientId)) return await metadataDocument(clientId, requester)
    const stored = await records.read(kind, clientId)
    if (stored === undefined) return undefined
    // Each use keeps a registered client another 90 days.
    await store.set(records.key(kind, clientId), stored.raw, CLIENT_TTL_SECONDS)
    return stored.value as KnownClient
  }

  return {
    find,
    findForPage: requester => async clientId => {
      try {
        return await find(clientId, requester)
      } catch (err) {
        if (err instanceof CimdLimitError) throw new ErrorPage('Too many requests', err.message, 429)
        throw err
      }
    },
    async register (metadata, ip) {
      const quota = await useIpQuota(store, { name: 'register-ip', max: config.env.REGISTRATIONS_PER_IP_PER_DAY, windowSeconds: REGISTRATION_WINDOW_SECONDS }, ip)
      if (!quota.allowed) {
        throw new OAuthError('temporarily_unavailable', 'too many client registrations from this address today; retry later', { status: 429, headers: { 'retry-after': String(quota.retryAfter) } })
      }
      const { clientId, clientSecret } = generateClientCredentials(metadata.token_endpoint_auth_method)
      const client: Registration['client'] = {
        client_id: clientId,
        ...metadata,
        client_secret_hash: clientSecret !== undefined ? hashSecret(clientSecret) : undefined,
        client_id_issued_at: clock.seconds()
      }
      await records.set(kind, clientId, client)
      return { client, clientSecret }
    },
    async authenticate (auth, requester) {
      const client = await find(auth.clientId, requester)
      authenticateClient(auth, client)
      if (auth.method === 'private_key_jwt') {
        const refused = (why: string): OAuthError => new OAuthError('invalid_client', why, { publicDescription: 'client authentication failed' })
        const keys = keysOf.get(auth.clientId)
        if (keys === undefined) throw refused('no keys for a private_key_jwt client')
        const now = clock.seconds()
        const { jti, exp } = await verifyClientAssertion(auth.assertion, { clientId: auth.clientId, audiences: [base, `${base}/oauth/token`, `${base}/token`], keys, now })
        if (!await useOnce(records, `client:${auth.clientId}`, jti, exp, now)) throw refused('client assertion refused: its jti was already used')
      }
      return client as KnownClient
    }
  }
}
