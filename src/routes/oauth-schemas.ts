import { Type } from 'typebox'

/** Form parameters; a repeated one arrives as a list and the parsers refuse it where OAuth does. */
export const ClientRequestBodySchema = Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())]))

/** HTTP Basic client authentication (RFC 6749 §2.3.1), when the client uses it. */
export const ClientAuthorizationHeadersSchema = Type.Object({
  authorization: Type.Optional(Type.String({ maxLength: 4096 }))
})

/** RFC 6749 §5.2 error body, as the error handler renders every OAuthError. */
export const OAuthErrorResponseSchema = Type.Object({
  error: Type.String(),
  error_description: Type.Optional(Type.String())
})

export const OAUTH_ERROR_RESPONSES = { 400: OAuthErrorResponseSchema, 401: OAuthErrorResponseSchema }
