import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { KEYS_CHANNEL, liveKeys, loadKeyMaterial, reseedStoredKeys, type SigningKey } from '../keys/key-ring.js'
import type { Keys } from '../keys/keys.js'
import { Sealer } from '../oauth/sealed.js'

declare module 'fastify' {
  interface FastifyInstance {
    keys: Keys
  }
}

async function keysPlugin (fastify: FastifyInstance): Promise<void> {
  const { env } = fastify.config
  const material = await loadKeyMaterial(env, fastify.store)
  if (material.source === 'generated' || material.source === 'store' || material.source === 'file') {
    fastify.log.warn({ keys: material.source },
      fastify.store.kind === 'redis'
        ? 'JWT_SIGNING_KEY/ENCRYPTION_KEY not set: using keys shared through Redis'
        : `JWT_SIGNING_KEY/ENCRYPTION_KEY not set: using keys kept in ${env.KEYS_FILE || 'memory'}`)
  }
  let signing = material.signing
  const handlers: Array<(signing: SigningKey[]) => void> = []
  const keys: Keys = {
    get signing () { return liveKeys(signing) },
    encryptionKey: material.encryptionKey,
    encryptionKeys: material.encryptionKeys,
    sealer: new Sealer(material.encryptionKeys),
    onRotate (handler) { handlers.push(handler) }
  }
  const fingerprint = (list: readonly SigningKey[]): string => list.map(k => `${k.kid}:${k.retireAt ?? ''}`).join(' ')
  const reload = async (): Promise<void> => {
    const next = await loadKeyMaterial(env, fastify.store)
    // Unchanged after a reconnect: keep the verifiers and their caches.
    if (fingerprint(next.signing) === fingerprint(signing)) return
    signing = next.signing
    for (const handler of handlers) handler(signing)
    fastify.log.info({ kid: signing[0].kid }, 'signing keys reloaded')
  }
  if (env.JWT_SIGNING_KEY === undefined && fastify.store.kind === 'redis') {
    // Redis may be back empty (put our keys back) or a rotation may have been published while
    // this replica was not subscribed (load it).
    fastify.store.onReconnect(() => {
      reseedStoredKeys(fastify.store, { signing, encryptionKey: material.encryptionKey })
        .then(reload)
        .catch(err => fastify.log.warn({ err }, 'restoring or reloading keys in Redis failed'))
    })
  }
  if (env.JWT_SIGNING_KEY === undefined) {
    // Another replica (or `npm run keys -- rotate`) rotated: pick the new list up from the store.
    await fastify.store.subscribe(KEYS_CHANNEL, () => {
      reload().catch(err => fastify.log.error({ err }, 'reloading signing keys failed'))
    })
  }
  fastify.decorate('keys', keys)
}

export default fp(keysPlugin, { name: 'keys', fastify: '5.x', dependencies: ['config', 'store'] })
