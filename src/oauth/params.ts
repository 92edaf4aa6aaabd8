/**
 * Request parameters as Fastify parses a query string or a form body: a repeated parameter
 * arrives as an array. OAuth parameters may appear only once (RFC 6749 §3.1, §3.2).
 */
import { OAuthError } from './errors.js'

export type Params = Record<string, string | string[] | undefined>

const repeatedIsInvalidRequest = (message: string): Error => new OAuthError('invalid_request', message)

/** A parameter given at most once; empty counts as absent. `onRepeat` builds the error for a repeat. */
export function singleParam (params: Params, name: string, onRepeat = repeatedIsInvalidRequest): string | undefined {
  const value = params[name]
  if (Array.isArray(value)) throw onRepeat(`${name} must not be repeated`)
  return value === '' ? undefined : value
}
