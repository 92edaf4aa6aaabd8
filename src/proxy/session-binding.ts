import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Binds an upstream `Mcp-Session-Id` to the token's subject without storing anything: the
 * client sees `<upstream id>.<mac>` and the gateway forwards the upstream id only when the mac
 * matches the caller's subject and route. A session id taken from another user is refused.
 */
export class SessionBinding {
  /**
   * Values already verified, by route, subject and the value the client sent: a client sends
   * the same session id on every request, and the HMAC cost each one ~3% of the proxied path.
   * Only verified values enter, so a hit needs the exact value a MAC check accepted.
   */
  private readonly verified = new Map<string, string>()

  constructor (private readonly key: Buffer, private readonly maxCached = 10_000) {}

  wrap (upstreamId: string, route: string, subject: string): string {
    return `${upstreamId}.${this.mac(upstreamId, route, subject)}`
  }

  /** The upstream id, or null when the value was not handed out to this subject on this route. */
  unwrap (clientId: string, route: string, subject: string): string | null {
    const key = `${route}\n${subject}\n${clientId}`
    const cached = this.verified.get(key)
    if (cached !== undefined) return cached
    const dot = clientId.lastIndexOf('.')
    if (dot <= 0) return null
    const upstreamId = clientId.slice(0, dot)
    const given = Buffer.from(clientId.slice(dot + 1))
    const expected = Buffer.from(this.mac(upstreamId, route, subject))
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
    // Bounded: past the cap it starts again empty (a miss only costs one HMAC).
    if (this.verified.size >= this.maxCached) this.verified.clear()
    this.verified.set(key, upstreamId)
    return upstreamId
  }

  private mac (upstreamId: string, route: string, subject: string): string {
    return createHmac('sha256', this.key).update(`${route}\n${subject}\n${upstreamId}`).digest('base64url').slice(0, 22)
  }
}
