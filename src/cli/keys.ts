import { randomBytes } from 'node:crypto'
import { generateSigningKey, KEYS_CHANNEL, rotateStoredSigningKey } from '../keys/key-ring.js'
import { openCliContext, runCli } from './cli-context.js'

/**
 * Key operations:
 *   npm run keys -- generate   prints JWT_SIGNING_KEY and ENCRYPTION_KEY lines for .env
 *   npm run keys -- rotate     (Redis) a new key signs from now on; old ones verify until their tokens expire
 */
runCli(async () => {
  const command = process.argv[2]
  if (command === 'generate') {
    const pem = generateSigningKey().privatePem.trim().replace(/\n/g, '\\n')
    return `JWT_SIGNING_KEY="${pem}"\nENCRYPTION_KEY=${randomBytes(32).toString('base64')}`
  }
  if (command !== 'rotate') throw new Error('usage: npm run keys -- generate | rotate')
  const { config, store } = await openCliContext()
  try {
    if (config.env.JWT_SIGNING_KEY !== undefined) {
      throw new Error('JWT_SIGNING_KEY is set: rotate by putting a new PEM first in it (keep the old one after it) and restarting')
    }
    if (store.kind !== 'redis') throw new Error('rotate works on keys shared through Redis; on the memory store delete KEYS_FILE and restart')
    const key = await rotateStoredSigningKey(store, config.env.ACCESS_TOKEN_TTL)
    await store.publish(KEYS_CHANNEL, key.kid)
    return `new signing key ${key.kid}; previous keys verify for ${config.env.ACCESS_TOKEN_TTL} s more`
  } finally {
    await store.close()
  }
})
