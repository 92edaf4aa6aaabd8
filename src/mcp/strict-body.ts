import { isUtf8 } from 'node:buffer'

export type StrictBody = { text: string } | { problem: string }

/** `charset` parameters of a Content-Type, lower-cased and unquoted (a header may repeat one). */
function charsets (contentType: string): string[] {
  const found: string[] = []
  for (const param of contentType.split(';').slice(1)) {
    const eq = param.indexOf('=')
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue
    found.push(param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase())
  }
  return found
}

/**
 * The text of a request body on a route whose tool rules read it, or why it is refused. The text
 * judged must be the text the upstream reads, so anything another parser could read differently
 * is refused rather than guessed at: a content coding, a charset other than UTF-8, invalid UTF-8
 * (simdutf's strict check: no overlongs, no surrogates) and a byte order mark, which the SDK's
 * TextDecoder strips silently but JSON.parse does not. Valid UTF-8 re-encodes to the same bytes,
 * so forwarding the text forwards the body unchanged.
 */
export function decodeStrictBody (bytes: Buffer, contentType: string | undefined, contentEncoding: string | undefined): StrictBody {
  if (contentEncoding !== undefined && contentEncoding.trim().toLowerCase() !== 'identity') {
    return { problem: 'request bodies must not carry a Content-Encoding on this route' }
  }
  const other = charsets(contentType ?? '').find(c => c !== 'utf-8' && c !== 'utf8')
  if (other !== undefined) return { problem: `charset "${other}" is not accepted: send UTF-8` }
  if (!isUtf8(bytes)) return { problem: 'the body is not valid UTF-8' }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { problem: 'the body starts with a byte order mark' }
  return { text: bytes.toString('utf8') }
}
