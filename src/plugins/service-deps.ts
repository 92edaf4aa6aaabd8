import type { FastifyInstance } from 'fastify'
import type { ServiceDeps } from '../authorization/service-deps.js'
import { RecordStore } from '../store/records.js'

const built = new WeakMap<FastifyInstance['store'], ServiceDeps>()

/**
 * The `{ store, records, clock, keys, config, log }` every authorization-server service is built
 * from, assembled once per store from what the config, store and keys plugins decorated.
 */
export function serviceDeps (fastify: FastifyInstance): ServiceDeps {
  let deps = built.get(fastify.store)
  if (deps === undefined) {
    deps = {
      store: fastify.store,
      records: new RecordStore(fastify.store, fastify.keys.sealer, fastify.log),
      clock: fastify.clock,
      keys: fastify.keys,
      config: fastify.config,
      log: fastify.log
    }
    built.set(fastify.store, deps)
  }
  return deps
}
