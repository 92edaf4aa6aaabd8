/**
 * GitHub OAuth apps: no ID token, so the identity comes from the API — the numeric user id as
 * subject and the primary email only when GitHub marks it verified.
 */
import { UpstreamLoginError, type UpstreamClient, type UpstreamProvider, type UpstreamTokens } from './provider.js'
import { callProvider, callProviderJson } from './provider-http.js'

const AUTHORIZE = 'https://github.com/login/oauth/authorize'
const TOKEN = 'https://github.com/login/oauth/access_token'
const API = 'https://api.github.com'

/** The token response's fields the gateway keeps. */
function upstreamTokens (body: Record<string, unknown>): UpstreamTokens {
  if (typeof body.access_token !== 'string') throw new UpstreamLoginError('the token response has no access_token')
  const str = (v: unknown): string | undefined => typeof v === 'string' && v !== '' ? v : undefined
  return {
    access_token: body.access_token,
    refresh_token: str(body.refresh_token),
    expires_at: typeof body.expires_in === 'number' ? Math.floor(Date.now() / 1000) + body.expires_in : undefined,
    scope: str(body.scope)
  }
}

function withQuery (endpoint: string, params: Record<string, string | undefined>): string {
  const url = new URL(endpoint)
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value)
  return url.href
}

export function githubProvider (client: UpstreamClient): UpstreamProvider {
  return {
    name: 'github',
    loginOrigin: new URL(AUTHORIZE).origin,
    authorizationUrl: start => withQuery(AUTHORIZE, {
      client_id: client.clientId,
      redirect_uri: client.redirectUri,
      scope: 'read:user user:email',
      state: start.state,
      code_challenge: start.codeChallenge,
      code_challenge_method: 'S256',
      allow_signup: 'false'
    }),

    // GitHub sends no `iss`; the state was matched by the gateway before this call.
    async exchange (callback, checks) {
      const code = callback.get('code')
      if (code === null) throw new UpstreamLoginError('GitHub sent no code')
      const tokens = upstreamTokens(await callProvider(TOKEN, {
        form: {
          client_id: client.clientId,
          client_secret: client.clientSecret,
          code,
          redirect_uri: client.redirectUri,
          code_verifier: checks.codeVerifier
        }
      }))
      const headers = { authorization: `Bearer ${tokens.access_token}`, 'x-github-api-version': '2022-11-28' }
      const user = await callProvider(`${API}/user`, { headers })
      if (typeof user.id !== 'number') throw new UpstreamLoginError('GitHub did not say who logged in')
      const emails = await callProviderJson(`${API}/user/emails`, { headers })
      const list = Array.isArray(emails) ? emails as Array<{ email?: string, primary?: boolean, verified?: boolean }> : []
      const primary = list.find(e => e.primary === true)
      return {
        identity: { sub: String(user.id), email: primary?.email, emailVerified: primary?.verified === true },
        tokens
      }
    },

    // Only GitHub apps with expiring user tokens hand out refresh tokens; the call is the same form.
    refresh: async refreshToken => upstreamTokens(await callProvider(TOKEN, {
      form: { client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'refresh_token', refresh_token: refreshToken }
    }))
  }
}
