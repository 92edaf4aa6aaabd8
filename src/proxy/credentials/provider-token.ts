import type { FastifyRequest } from 'fastify'
import type { RouteConfig } from '../../config/config-file.js'
import { unauthorized } from '../../oauth/challenge.js'
import { ProviderTokenError, type ProviderTokens } from '../../plugins/provider-tokens.js'
import type { ProxyErrorSender } from '../proxy-errors.js'
import type { UpstreamCredentials } from './upstream-credentials.js'

/**
 * upstream_auth provider_token: the user's access token at the identity provider, fetched (and
 * refreshed server-side) before forwarding, sent as Authorization or as the route's named header.
 * A dead grant sends the client to authorize again; a provider that cannot be reached is a 502.
 */
export function providerToken (route: RouteConfig, name: string, tokens: ProviderTokens, refuse: ProxyErrorSender): UpstreamCredentials {
  const held = new WeakMap<FastifyRequest, string>()
  return {
    async prepare (request, reply) {
      try {
        held.set(request, await tokens.accessTokenFor((request.auth as NonNullable<FastifyRequest['auth']>).sub))
      } catch (err) {
        if (!(err instanceof ProviderTokenError)) throw err
        if (err.kind === 'reauthorize') throw unauthorized(route, { description: err.message, reason: 'provider_reauthorize' })
        refuse(reply, 'provider', err.message)
        return reply
      }
    },
    apply (request, headers) {
      const token = held.get(request) ?? ''
      headers[name] = name === 'authorization' ? `Bearer ${token}` : token
    }
  }
}
