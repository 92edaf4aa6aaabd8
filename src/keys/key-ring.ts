import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { dirname } from 'node:path'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import type { Env } from '../config/env.js'
import type { Store } from '../store/store.js'
import { parseEncryptionKeys, parseSigningKeys, signingKeyFromPem, type SigningKey } from './key-parsing.js'

export type { SigningKey } from './key-parsing.js'

export interface KeyMaterial {
  /** First key signs; all verify. */
  signing: SigningKey[]
  /** Seals; also the root of the cookie and session-binding keys. */
  encryptionKey: Buffer
  /** encryptionKey first, then older ones that still open what they sealed (ENCRYPTION_KEY=new,old). */
  encryptionKeys: Buffer[]
  /** Where the keys came from, for the start-up log. */
  source: 'environment' | 'store' | 'file' | 'generated'
}

interface StoredKeys {
  signing: Array<{ pem: string, createdAt: number, retireAt?: number }>
  encryptionKey: string
}

const STORE_KEY = 'keys:material'

/** Whether `key` has stopped verifying at `nowMs` (its `retireAt` has passed). */
export function isRetired (key: SigningKey, nowMs = Date.now()): boolean {
  return key.retireAt !== undefined && key.retireAt * 1000 <= nowMs
}

/** The keys that still verify at `nowMs`, in order (the first signs). */
export function liveKeys (keys: readonly SigningKey[], nowMs = Date.now()): SigningKey[] {
  return keys.filter(k => !isRetired(k, nowMs))
}

export function generateSigningKey (now = Math.floor(Date.now() / 1000)): SigningKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return signingKeyFromPem(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), now)
}

function serialize (material: Pick<KeyMaterial, 'signing' | 'encryptionKey'>): string {
  const stored: StoredKeys = {
    signing: material.signing.map(k => ({ pem: k.privatePem, createdAt: k.createdAt, retireAt: k.retireAt })),
    encryptionKey: material.encryptionKey.toString('base64')
  }
  return JSON.stringify(stored)
}

function deserialize (text: string): Pick<KeyMaterial, 'signing' | 'encryptionKey'> {
  const stored = JSON.parse(text) as StoredKeys
  return {
    signing: stored.signing.map(k => signingKeyFromPem(k.pem, k.createdAt, k.retireAt)),
    encryptionKey: Buffer.from(stored.encryptionKey, 'base64')
  }
}

function readKeysFile (path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

/**
 * Keys from the environment when set; otherwise shared through the store (Redis: every replica
 * signs with the same key) or, on the memory store, kept in KEYS_FILE so that `npm run token`
 * and restarts see the same key.
 */
export async function loadKeyMaterial (env: Env, store: Store): Promise<KeyMaterial> {
  const envSigning = env.JWT_SIGNING_KEY !== undefined ? parseSigningKeys(env.JWT_SIGNING_KEY) : undefined
  const envEncryption = env.ENCRYPTION_KEY !== undefined ? parseEncryptionKeys(env.ENCRYPTION_KEY) : undefined
  if (envSigning !== undefined && envEncryption !== undefined) {
    return { signing: envSigning, encryptionKey: envEncryption[0], encryptionKeys: envEncryption, source: 'environment' }
  }
  const useFile = store.kind === 'memory' && env.KEYS_FILE !== ''
  let text = useFile ? readKeysFile(env.KEYS_FILE) : await store.get(STORE_KEY)
  let source: KeyMaterial['source'] = useFile ? 'file' : 'store'
  if (text === null) {
    const fresh = serialize({ signing: [generateSigningKey()], encryptionKey: randomBytes(32) })
    source = 'generated'
    if (useFile) {
      try {
        mkdirSync(dirname(env.KEYS_FILE), { recursive: true, mode: 0o700 })
        writeFileSync(env.KEYS_FILE, fresh, { mode: 0o600, flag: 'wx' })
        text = fresh
      } catch {
        // Read-only filesystem or a concurrent writer: use what is there, else keep keys in memory.
        text = readKeysFile(env.KEYS_FILE) ?? fresh
      }
    } else {
      // Only one replica's key wins; the others adopt it.
      text = await store.cas(STORE_KEY, null, fresh) ? fresh : await store.get(STORE_KEY) ?? fresh
    }
  }
  const shared = deserialize(text)
  return {
    signing: envSigning ?? shared.signing,
    encryptionKey: envEncryption?.[0] ?? shared.encryptionKey,
    encryptionKeys: envEncryption ?? [shared.encryptionKey],
    source
  }
}

/**
 * After Redis lost its data (a restart without persistence), puts this replica's keys back so
 * that replicas starting later adopt them instead of generating different ones.
 */
export async function reseedStoredKeys (store: Store, material: Pick<KeyMaterial, 'signing' | 'encryptionKey'>): Promise<void> {
  await store.cas(STORE_KEY, null, serialize(material))
}

/**
 * Puts a new signing key in front of the store's key list; the previous ones keep verifying
 * for `graceSeconds` (the access-token lifetime), then drop out.
 */
export async function rotateStoredSigningKey (store: Store, graceSeconds: number, now = Math.floor(Date.now() / 1000)): Promise<SigningKey> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const text = await store.get(STORE_KEY)
    if (text === null) throw new Error('no keys in the store yet: start the gateway once first')
    const current = deserialize(text)
    const next = generateSigningKey(now)
    const kept = liveKeys(current.signing, now * 1000)
      .map(k => ({ ...k, retireAt: k.retireAt ?? now + graceSeconds }))
    if (await store.cas(STORE_KEY, text, serialize({ signing: [next, ...kept], encryptionKey: current.encryptionKey }))) return next
  }
  throw new Error('the key set kept changing during rotation; try again')
}

export const KEYS_CHANNEL = 'keys'
