import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Binds an upstream `Mcp-Session-Id` to the token's subject without storing anything: the
 * client sees `<upstream id>.<mac>` and the gateway forwards the upstream id only when the mac
 * matches the caller's subject and route. A session id taken from another user is refused.
 */
export class SessionBinding {
  constructor (private readonly key: Buffer) {}

  wrap (upstreamId: string, route: string, subject: string): string {
    return `${upstreamId}.${this.mac(upstreamId, route, subject)}`
  }

  /** The upstream id, or null when the value was not handed out to this subject on this route. */
  unwrap (clientId: string, route: string, subject: string): string | null {
    const dot = clientId.lastIndexOf('.')
    if (dot <= 0) return null
    const upstreamId = clientId.slice(0, dot)
    const given = Buffer.from(clientId.slice(dot + 1))
    const expected = Buffer.from(this.mac(upstreamId, route, subject))
    return given.length === expected.length && timingSafeEqual(given, expected) ? upstreamId : null
  }

  private mac (upstreamId: string, route: string, subject: string): string {
    return createHmac('sha256', this.key).update(`${route}\n${subject}\n${upstreamId}`).digest('base64url').slice(0, 22)
  }
}
