/**
 * Server-rendered consent and error pages. Every interpolated value is HTML-escaped; the pages
 * carry no script and one nonce'd <style>, so they work under
 * `default-src 'none'; style-src 'nonce-…'; form-action 'self'; frame-ancestors 'none'`.
 */
import { isLoopbackUri } from './redirect-uri.js'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, c => ESCAPES[c])
}

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d1f23}
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:1.35rem;margin-top:0}
dt{font-weight:600;margin-top:.75rem}dd{margin:0;word-break:break-all}
code{background:#f0f1f3;padding:0 .25rem;border-radius:3px}
.warning{border-left:4px solid #c77700;background:#fff6e5;padding:.5rem .75rem;margin:1rem 0}
.note{color:#555;font-size:.9rem}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}
button{font:inherit;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #888;background:#fff;cursor:pointer}
button[value=approve]{background:#1f6feb;border-color:#1f6feb;color:#fff}`

function layout (title: string, body: string, nonce: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style nonce="${escapeHtml(nonce)}">${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`
}

export interface ConsentPageInput {
  clientId: string
  /** Self-declared by the client; absent for some. */
  clientName?: string
  /** The redirect URI of this request: where the code will go. */
  redirectUri: string
  /** The MCP server's URL (the route's resource). */
  resourceUrl: string
  /** The scopes to approve now; on step-up only those not yet granted. */
  scopes: readonly string[]
  /** Scopes the user approved before for this client (step-up); shown, not asked again. */
  grantedScopes?: readonly string[]
  /** Where the form posts (a same-origin path). */
  action: string
  csrfToken: string
  /** Identifies the pending authorization request stored server-side. */
  transactionId: string
  /** The CSP nonce of this response. */
  nonce: string
}

/** Where the code will be delivered, as a person can judge it. */
function redirectTarget (uri: string): string {
  const url = new URL(uri)
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : `${url.protocol}//${url.host}`
}

function scopeList (scopes: readonly string[]): string {
  return scopes.length === 0
    ? '<dd>basic access</dd>'
    : scopes.map(s => `<dd><code>${escapeHtml(s)}</code></dd>`).join('\n')
}

/** The consent page: what is asking, for what, and where the access goes. */
export function renderConsentPage (input: ConsentPageInput): string {
  const name = input.clientName ?? input.clientId
  // A metadata-document client's id is an https URL on a domain the client controls: worth showing.
  const publishedBy = input.clientId.startsWith('https://') ? new URL(input.clientId).host : undefined
  const stepUp = input.grantedScopes !== undefined && input.grantedScopes.length > 0
  const parts = [
    `<h1>${stepUp ? 'Allow more access for' : 'Allow'} ${escapeHtml(name)}?</h1>`,
    `<p><strong>${escapeHtml(name)}</strong> wants to use <strong>${escapeHtml(input.resourceUrl)}</strong> as you.</p>`,
    publishedBy !== undefined
      ? `<p class="note">Application described at <code>${escapeHtml(publishedBy)}</code>.</p>`
      : '<p class="note">The application chose this name itself; the gateway has not verified it.</p>',
    '<dl>',
    `<dt>${stepUp ? 'New permissions requested' : 'Permissions'}</dt>`,
    scopeList(input.scopes),
    stepUp ? `<dt>Already allowed</dt>\n${scopeList(input.grantedScopes ?? [])}` : '',
    '<dt>Access will be sent to</dt>',
    `<dd><code>${escapeHtml(redirectTarget(input.redirectUri))}</code></dd>`,
    '</dl>',
    isLoopbackUri(input.redirectUri)
      ? '<p class="warning"><strong>Only approve if you just started this from an application on this computer.</strong> ' +
        'Access goes to a program on your own machine (localhost), which the gateway cannot identify.</p>'
      : '',
    `<form method="post" action="${escapeHtml(input.action)}">`,
    `<input type="hidden" name="csrf_token" value="${escapeHtml(input.csrfToken)}">`,
    `<input type="hidden" name="transaction_id" value="${escapeHtml(input.transactionId)}">`,
    '<div class="actions">',
    '<button type="submit" name="decision" value="approve">Approve</button>',
    '<button type="submit" name="decision" value="deny">Deny</button>',
    '</div>',
    '</form>'
  ]
  return layout(`Allow ${name}?`, parts.filter(p => p !== '').join('\n'), input.nonce)
}

/** A page for failures that must not redirect (unknown client, bad redirect URI, bad state). */
export function renderErrorPage (title: string, message: string, nonce: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`, nonce)
}
