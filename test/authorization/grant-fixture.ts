import { randomBytes } from 'node:crypto'
import { manualClock } from '../../src/authorization/clock.js'
import { createGrants, type Grants } from '../../src/authorization/grants.js'
import type { KnownClient } from '../../src/authorization/clients.js'
import type { ServiceDeps } from '../../src/authorization/service-deps.js'
import { createUpstreamTokenVault } from '../../src/authorization/upstream-token-vault.js'
import { loadGatewayConfig } from '../../src/config/gateway-config.js'
import { generateSigningKey } from '../../src/keys/key-ring.js'
import { Sealer } from '../../src/oauth/sealed.js'
import { s256 } from '../../src/oauth/pkce.js'
import { RecordStore } from '../../src/store/records.js'
import { MemoryStore } from '../../src/store/memory-store.js'
import type { Store } from '../../src/store/store.js'
import { TokenRejected, TokenService } from '../../src/tokens/token-service.js'

export const VERIFIER = 'v'.repeat(43)
export const REDIRECT = 'http://127.0.0.1:9999/callback'
export const CLIENT: KnownClient = {
  client_id: 'client-1',
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_method: 'none'
}

/** A log that keeps its lines, to see what a service reported. */
export function collectingLog (): ServiceDeps['log'] & { lines: string[] } {
  const lines: string[] = []
  return { lines, info: (_obj, msg) => { lines.push(msg) }, warn: (_obj, msg) => { lines.push(msg) } }
}

/**
 * The grants service on the memory store with a clock the test moves, real signing keys and a
 * real token service (whose deny set stands in for the revocation broadcast): no HTTP, no Redis.
 */
export function grantFixture (env: Record<string, string> = {}, store?: Store): {
  grants: Grants
  clock: ReturnType<typeof manualClock>
  deps: ServiceDeps
  log: ReturnType<typeof collectingLog>
  /** Why the token is refused now, or 'ok'. */
  check: (accessToken: string, pattern?: string) => string
} {
  const clock = manualClock()
  const config = loadGatewayConfig({
    env: { BASE_URL: 'https://gw.example', KEYS_FILE: '', ...env },
    configFile: {
      proxies: [
        { pattern: '/calc/mcp', target_url: 'http://127.0.0.1:1/mcp' },
        { pattern: '/files/mcp', target_url: 'http://127.0.0.1:2/mcp' }
      ]
    }
  })
  const signing = [generateSigningKey()]
  const encryptionKey = randomBytes(32)
  const sealer = new Sealer([encryptionKey])
  const keys = { signing, encryptionKey, encryptionKeys: [encryptionKey], sealer, onRotate: () => {} }
  const log = collectingLog()
  const memory = store ?? new MemoryStore({ longLived: 1000, shortLived: 1000 }, clock.now)
  const deps: ServiceDeps = { store: memory, records: new RecordStore(memory, sealer, log), clock, keys, config, log }
  const tokens = new TokenService(config.env.BASE_URL, signing, config.env.ACCESS_TOKEN_TTL, clock)
  const grants = createGrants({
    ...deps,
    tokens: { mint: opts => tokens.mintAccess(opts), revoke: async (jti, exp) => { tokens.markRevoked(jti, exp) } },
    vault: createUpstreamTokenVault(deps)
  })
  const check = (accessToken: string, pattern = '/calc/mcp'): string => {
    try {
      tokens.verify(accessToken, config.routeByPattern.get(pattern)?.resourceUrl as string)
      return 'ok'
    } catch (err) {
      return err instanceof TokenRejected ? err.reason : String(err)
    }
  }
  return { grants, clock, deps, log, check }
}

export const codeGrant = (overrides: Record<string, unknown> = {}): Parameters<Grants['issueCode']>[0] => ({
  clientId: CLIENT.client_id,
  redirectUri: REDIRECT,
  codeChallenge: s256(VERIFIER),
  resource: '/calc/mcp',
  scopes: ['mcp'],
  sub: 'user-1',
  email: 'ana@example.com',
  emailVerified: true,
  ...overrides
})

export const redeem = (code: string, resource?: string): { code: string, redirectUri: string, codeVerifier: string, resource?: string } =>
  ({ code, redirectUri: REDIRECT, codeVerifier: VERIFIER, resource })
