import type { Static, TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import type { Sealer } from '../oauth/sealed.js'
import type { KeyKind } from './storage-schema.js'
import type { Store } from './store.js'

/** Where a value that fails its schema is reported (pino's signature, or a test's). */
export interface RecordLog { warn: (obj: object, msg: string) => void }

/** A record as read, with the exact stored text (what `cas` compares against). */
export interface ReadRecord<T> { raw: string, value: T }

type Check = (value: unknown) => boolean
const checks = new WeakMap<TSchema, Check>()

function checkOf (schema: TSchema): Check {
  let check = checks.get(schema)
  if (check === undefined) {
    const compiled = Compile(schema)
    check = value => compiled.Check(value)
    checks.set(schema, check)
  }
  return check
}

/**
 * The store seen through the storage schema: values are encoded by their kind (JSON, sealed
 * JSON, text) and checked on every read. A value that does not decode (corrupt, written by
 * something else, sealed with a key no longer configured) is logged once per read, without its
 * content, and treated as absent: the caller's "not found" path runs (the user authorizes again),
 * never a 500.
 */
export class RecordStore {
  constructor (readonly store: Store, private readonly sealer: Sealer, private readonly log: RecordLog) {}

  key (kind: KeyKind, id: string): string {
    return `${kind.name}:${id}`
  }

  encode<S extends TSchema> (kind: KeyKind<S>, value: Static<S>): string {
    if (kind.encoding === 'text') return value as string
    const json = JSON.stringify(value)
    return kind.encoding === 'sealed-json' ? this.sealer.seal(json, kind.sealContext) : json
  }

  decode<S extends TSchema> (kind: KeyKind<S>, id: string, raw: string): Static<S> | undefined {
    let value: unknown = raw
    if (kind.encoding !== 'text') {
      const json = kind.encoding === 'sealed-json' ? this.sealer.open(raw, kind.sealContext) : raw
      if (json === undefined) return this.refuse(kind, id, 'no configured ENCRYPTION_KEY opens it')
      try {
        value = JSON.parse(json)
      } catch {
        return this.refuse(kind, id, 'not JSON')
      }
    }
    return checkOf(kind.schema)(value) ? value as Static<S> : this.refuse(kind, id, 'does not match its schema')
  }

  async get<S extends TSchema> (kind: KeyKind<S>, id: string): Promise<Static<S> | undefined> {
    return (await this.read(kind, id))?.value
  }

  /** The record and its stored text, for a compare-and-swap; undefined when absent or unreadable. */
  async read<S extends TSchema> (kind: KeyKind<S>, id: string): Promise<ReadRecord<Static<S>> | undefined> {
    const raw = await this.store.get(this.key(kind, id))
    if (raw === null) return undefined
    const value = this.decode(kind, id, raw)
    return value === undefined ? undefined : { raw, value }
  }

  /** `ttlSeconds` defaults to the kind's fixed TTL. */
  async set<S extends TSchema> (kind: KeyKind<S>, id: string, value: Static<S>, ttlSeconds = this.fixedTtl(kind)): Promise<void> {
    await this.store.set(this.key(kind, id), this.encode(kind, value), ttlSeconds)
  }

  /** Atomically read and remove (single use). */
  async take<S extends TSchema> (kind: KeyKind<S>, id: string): Promise<Static<S> | undefined> {
    const raw = await this.store.getDel(this.key(kind, id))
    return raw === null ? undefined : this.decode(kind, id, raw)
  }

  async del (kind: KeyKind, id: string): Promise<void> {
    await this.store.del(this.key(kind, id))
  }

  /** Replaces the record only if its stored text is still `expected` (null: absent). */
  async cas<S extends TSchema> (kind: KeyKind<S>, id: string, expected: string | null, value: Static<S>, ttlSeconds = this.fixedTtl(kind)): Promise<boolean> {
    return await this.store.cas(this.key(kind, id), expected, this.encode(kind, value), ttlSeconds)
  }

  private fixedTtl (kind: KeyKind): number | undefined {
    return typeof kind.ttl === 'number' ? kind.ttl : undefined
  }

  private refuse (kind: KeyKind, id: string, why: string): undefined {
    // Ids of some kinds are hashes, of others a subject: log the kind and the length only.
    this.log.warn({ kind: kind.name, idLength: id.length }, `stored ${kind.name} record ignored: ${why}`)
    return undefined
  }
}
