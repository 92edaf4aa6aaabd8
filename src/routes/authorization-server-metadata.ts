import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { gatewayScopes } from '../config/config-file.js'
import { ASSERTION_ALGORITHMS } from '../oauth/client-assertion.js'
import { OFFLINE_ACCESS } from '../oauth/scopes.js'
import { JWT_BEARER_GRANT } from '../oauth/token-request.js'

const StringList = Type.Array(Type.String())

export const AuthorizationServerMetadataSchema = Type.Object({
  issuer: Type.String(),
  authorization_endpoint: Type.String(),
  token_endpoint: Type.String(),
  registration_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  introspection_endpoint: Type.String(),
  jwks_uri: Type.String(),
  scopes_supported: StringList,
  response_types_supported: StringList,
  response_modes_supported: StringList,
  grant_types_supported: StringList,
  token_endpoint_auth_methods_supported: StringList,
  revocation_endpoint_auth_methods_supported: StringList,
  introspection_endpoint_auth_methods_supported: StringList,
  token_endpoint_auth_signing_alg_values_supported: StringList,
  authorization_grant_profiles_supported: StringList,
  code_challenge_methods_supported: StringList,
  client_id_metadata_document_supported: Type.Boolean(),
  authorization_response_iss_parameter_supported: Type.Boolean()
})

export const CLIENT_AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt']
/** draft-ietf-oauth-identity-assertion-authz-grant: ID-JAGs accepted by the jwt-bearer grant. */
export const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag'

/**
 * RFC 8414 metadata, served at both well-known names (MCP clients of every revision probe one
 * or the other). `issuer` is BASE_URL byte for byte: clients compare it with the `iss` of
 * authorization responses (RFC 9207).
 */
export default async function authorizationServerMetadataRoutes (fastify: FastifyInstance): Promise<void> {
  const { env, routes } = fastify.config
  const base = env.BASE_URL
  const metadata = {
    issuer: base,
    authorization_endpoint: `${base}/oauth/authorize`,
    token_endpoint: `${base}/oauth/token`,
    registration_endpoint: `${base}/oauth/register`,
    revocation_endpoint: `${base}/oauth/revoke`,
    introspection_endpoint: `${base}/oauth/introspect`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    scopes_supported: [...gatewayScopes(routes), OFFLINE_ACCESS],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', JWT_BEARER_GRANT],
    token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    // private_key_jwt assertions (RFC 7523): asymmetric algorithms only.
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    authorization_grant_profiles_supported: [ID_JAG_PROFILE],
    revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    // Introspection reveals who a token belongs to: confidential clients only.
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    client_id_metadata_document_supported: true,
    authorization_response_iss_parameter_supported: true
  }
  const options = { schema: { response: { 200: AuthorizationServerMetadataSchema } } }
  for (const url of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    fastify.get(url, options, async (_request, reply) => await reply.header('cache-control', 'public, max-age=300').send(metadata))
  }
}
