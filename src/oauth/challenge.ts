import { OAuthError } from './errors.js'

/** Quotes a value for an auth-param (RFC 9110 §11.2): backslash-escape `"` and `\`. */
function quote (value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`
}

export interface ChallengeTarget {
  metadataUrl: string
  scopes: readonly string[]
}

/**
 * 401 for a request without a usable token (RFC 6750 §3, RFC 9728 §5.1). `error` appears only
 * when a token was sent, so clients without one simply start the authorization flow.
 */
export function unauthorized (target: ChallengeTarget, invalid?: { description: string, reason: string }): OAuthError {
  const params = [`resource_metadata=${quote(target.metadataUrl)}`, `scope=${quote(target.scopes.join(' '))}`]
  if (invalid !== undefined) params.unshift('error="invalid_token"', `error_description=${quote(invalid.description)}`)
  return new OAuthError('invalid_token', invalid?.description ?? 'Authorization required', {
    status: 401,
    reason: invalid?.reason ?? 'missing_token',
    headers: { 'www-authenticate': `Bearer ${params.join(', ')}` }
  })
}

/** 403 when the token lacks scopes: ask for the needed ones plus those already granted. */
export function insufficientScope (target: ChallengeTarget, granted: readonly string[]): OAuthError {
  const scopes = [...new Set([...granted, ...target.scopes])].join(' ')
  const description = `This resource needs the scopes: ${target.scopes.join(' ')}`
  return new OAuthError('insufficient_scope', description, {
    status: 403,
    reason: 'insufficient_scope',
    headers: {
      'www-authenticate': `Bearer error="insufficient_scope", scope=${quote(scopes)}, resource_metadata=${quote(target.metadataUrl)}, error_description=${quote(description)}`
    }
  })
}
