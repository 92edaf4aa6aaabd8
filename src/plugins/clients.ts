import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { ClientConfig } from '../config/config-file.js'
import { authenticateClient, type ClientAuthentication } from '../oauth/client-auth.js'
import { generateClientCredentials, type ClientMetadata, type GrantType, type TokenEndpointAuthMethod } from '../oauth/client-metadata.js'
import { ClientMetadataDocuments, isCimdClientId } from '../oauth/cimd.js'
import { hashSecret } from '../oauth/secrets.js'

/** Any client the gateway knows, whichever way it became known. */
export interface KnownClient {
  client_id: string
  redirect_uris: string[]
  client_name?: string
  grant_types: GrantType[]
  token_endpoint_auth_method: TokenEndpointAuthMethod
  client_secret_hash?: string
  client_id_issued_at?: number
}

export interface Registration {
  client: KnownClient
  /** Shown once, in the registration response; only its hash is kept. */
  clientSecret?: string
}

export interface Clients {
  /** Pre-registered (config.yaml), then metadata document (https client_id), then registered (DCR). */
  find: (clientId: string) => Promise<KnownClient | undefined>
  register: (metadata: ClientMetadata) => Promise<Registration>
  /** The client the credentials prove; throws invalid_client. */
  authenticate: (auth: ClientAuthentication) => Promise<KnownClient>
}

declare module 'fastify' {
  interface FastifyInstance {
    clients: Clients
  }
}

/** Registered clients unused this long are forgotten; each use starts the period again. */
export const CLIENT_TTL_SECONDS = 90 * 24 * 60 * 60

function fromConfig (entry: ClientConfig): KnownClient {
  return {
    client_id: entry.clientId,
    redirect_uris: entry.redirectUris,
    client_name: entry.clientName,
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: entry.clientSecret !== undefined ? 'client_secret_basic' : 'none',
    client_secret_hash: entry.clientSecret !== undefined ? hashSecret(entry.clientSecret) : undefined
  }
}

async function clientsPlugin (fastify: FastifyInstance): Promise<void> {
  const { env, clients: configured } = fastify.config
  const preRegistered = new Map(configured.map(c => [c.clientId, fromConfig(c)]))
  const documents = new ClientMetadataDocuments({ allowLoopback: env.CIMD_ALLOW_LOOPBACK })
  const store = fastify.store

  async function find (clientId: string): Promise<KnownClient | undefined> {
    const known = preRegistered.get(clientId)
    if (known !== undefined) return known
    if (isCimdClientId(clientId, env.CIMD_ALLOW_LOOPBACK)) return await documents.get(clientId)
    const raw = await store.get(`client:${clientId}`)
    if (raw === null) return undefined
    await store.set(`client:${clientId}`, raw, CLIENT_TTL_SECONDS)
    return JSON.parse(raw) as KnownClient
  }

  const clients: Clients = {
    find,
    async register (metadata) {
      const { clientId, clientSecret } = generateClientCredentials(metadata.token_endpoint_auth_method)
      const client: KnownClient = {
        client_id: clientId,
        ...metadata,
        client_secret_hash: clientSecret !== undefined ? hashSecret(clientSecret) : undefined,
        client_id_issued_at: Math.floor(Date.now() / 1000)
      }
      await store.set(`client:${clientId}`, JSON.stringify(client), CLIENT_TTL_SECONDS)
      return { client, clientSecret }
    },
    async authenticate (auth) {
      const client = await find(auth.clientId)
      authenticateClient(auth, client)
      return client as KnownClient
    }
  }
  fastify.decorate('clients', clients)
}

export default fp(clientsPlugin, { name: 'clients', fastify: '5.x', dependencies: ['config', 'store'] })
