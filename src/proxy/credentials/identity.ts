import type { FastifyRequest } from 'fastify'
import type { AccessClaims } from '../../tokens/token-service.js'
import type { UpstreamCredentials } from './upstream-credentials.js'

/** upstream_auth identity: a short-lived JWT signed by the gateway, audience the target URL. */
export function identityToken (targetUrl: string, sign: (claims: AccessClaims, audience: string) => string): UpstreamCredentials {
  return {
    apply: (request, headers) => {
      headers.authorization = `Bearer ${sign(request.auth as NonNullable<FastifyRequest['auth']>, targetUrl)}`
    }
  }
}
