import type { Store } from '../store/store.js'

/**
 * Revoked access tokens travel as "<jti> <exp>": in a store set (replicas that start, or catch up
 * after missing messages, read it) and over pub/sub (running replicas learn at once).
 */
export const REVOKED_SET = 'revoked'
export const REVOCATIONS_CHANNEL = 'revocations'

/** A jti as the gateway mints it (base64url); never a space, which would split the member. */
export const JTI_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export const revocationMember = (jti: string, exp: number): string => `${jti} ${exp}`

export function parseRevocation (member: string): { jti: string, exp: number } | undefined {
  const [jti, exp] = member.split(' ')
  return jti !== undefined && exp !== undefined ? { jti, exp: Number(exp) } : undefined
}

/** Denies a token on every replica until `expiresAt`: /oauth/revoke and `npm run token -- revoke` both come here. */
export async function publishRevocation (store: Store, jti: string, expiresAt: number): Promise<void> {
  const member = revocationMember(jti, expiresAt)
  await store.setAdd(REVOKED_SET, member, expiresAt)
  await store.publish(REVOCATIONS_CHANNEL, member)
}
