import type { GatewayConfig } from '../config/gateway-config.js'
import type { Keys } from '../keys/keys.js'
import type { RecordLog, RecordStore } from '../store/records.js'
import type { Store } from '../store/store.js'
import type { Clock } from './clock.js'

/** The log services write to (pino's signature). */
export interface ServiceLog extends RecordLog {
  info: (obj: object, msg: string) => void
}

/**
 * What every authorization-server service is built from. `records` is the store seen through
 * the storage schema (src/store/storage-schema.ts); `store` itself is there for counters.
 */
export interface ServiceDeps {
  store: Store
  records: RecordStore
  clock: Clock
  keys: Keys
  config: GatewayConfig
  log: ServiceLog
}
