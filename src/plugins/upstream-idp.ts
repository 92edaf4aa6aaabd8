import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { commaList, type Env } from '../config/env.js'
import { ConfigError } from '../config/config-error.js'
import { githubProvider } from '../upstream/github.js'
import { discoverOidc, genericOidcProvider, googleProvider } from '../upstream/oidc.js'
import type { UpstreamProvider } from '../upstream/provider.js'
import type { GatewayTracing } from '../tracing/gateway-tracing.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** null when the provider has no client credentials yet: logins then show why. */
    upstreamIdp: UpstreamProvider | null
  }
}

function required (env: Env, name: keyof Env): string {
  const value = env[name]
  if (typeof value !== 'string' || value === '') throw new ConfigError(name, `is required with OAUTH_PROVIDER=${env.OAUTH_PROVIDER}`)
  return value
}

async function createProvider (env: Env): Promise<UpstreamProvider | null> {
  const redirectUri = `${env.BASE_URL}/oauth/callback`
  switch (env.OAUTH_PROVIDER) {
    case 'google':
      // The default provider: a gateway started without credentials still serves its documents.
      if (env.OAUTH_GOOGLE_CLIENT_ID === '') return null
      return googleProvider({
        clientId: env.OAUTH_GOOGLE_CLIENT_ID,
        clientSecret: required(env, 'OAUTH_GOOGLE_CLIENT_SECRET'),
        redirectUri: env.OAUTH_GOOGLE_REDIRECT_URI !== '' ? env.OAUTH_GOOGLE_REDIRECT_URI : redirectUri,
        scopes: commaList(env.OAUTH_GOOGLE_SCOPES)
      })
    case 'oidc': {
      const issuer = required(env, 'OAUTH_OIDC_ISSUER')
      const metadata = await discoverOidc(issuer).catch(err => {
        throw new ConfigError('OAUTH_OIDC_ISSUER', `discovery failed: ${(err as Error).message}`)
      })
      return genericOidcProvider(metadata, {
        clientId: required(env, 'OAUTH_OIDC_CLIENT_ID'),
        clientSecret: required(env, 'OAUTH_OIDC_CLIENT_SECRET'),
        redirectUri,
        scopes: commaList(env.OAUTH_OIDC_SCOPES)
      })
    }
    case 'github':
      return githubProvider({
        clientId: required(env, 'OAUTH_GITHUB_CLIENT_ID'),
        clientSecret: required(env, 'OAUTH_GITHUB_CLIENT_SECRET'),
        redirectUri,
        scopes: []
      })
  }
}

/** The identity provider users log in with, chosen by OAUTH_PROVIDER; OIDC is discovered here, once. */
async function upstreamIdpPlugin (fastify: FastifyInstance): Promise<void> {
  const provider = await createProvider(fastify.config.env)
  if (provider === null) fastify.log.warn('OAUTH_GOOGLE_CLIENT_ID is not set: users cannot log in until it is')
  fastify.decorate('upstreamIdp', provider === null || fastify.tracing === null ? provider : traced(provider, fastify.tracing))
}

/** The same provider with a span around each call (the login's code exchange, with GitHub's user lookups, and each refresh). */
function traced (provider: UpstreamProvider, tracing: GatewayTracing): UpstreamProvider {
  const attributes = { 'mcpgw.idp': provider.name }
  return {
    name: provider.name,
    loginOrigin: provider.loginOrigin,
    authorizationUrl: start => provider.authorizationUrl(start),
    exchange: async (callback, checks) => await tracing.call('idp login exchange', attributes, async () => await provider.exchange(callback, checks)),
    refresh: async refreshToken => await tracing.call('idp refresh', attributes, async () => await provider.refresh(refreshToken))
  }
}

export default fp(upstreamIdpPlugin, { name: 'upstream-idp', fastify: '5.x', dependencies: ['config', 'tracing'] })
