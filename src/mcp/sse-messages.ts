import { StringDecoder } from 'node:string_decoder'
import { Transform, type TransformCallback } from 'node:stream'
import { rewriteMessages } from './json-rpc.js'

/**
 * Passes an SSE stream through event by event, handing each JSON-RPC response (an event whose
 * data holds "result" or "error"; each element of a batch) to `visit`, which may return a
 * replacement message. Events are forwarded as soon as they are complete, so streaming is kept;
 * other events are not parsed.
 */
export class SseMessages extends Transform {
  private pending = ''
  /** A character split across two chunks must not become two replacement characters. */
  private readonly decoder = new StringDecoder('utf8')

  constructor (private readonly visit: (message: Record<string, unknown>) => Record<string, unknown> | undefined) {
    super()
  }

  _transform (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.pending += this.decoder.write(chunk)
    let end: number
    let out = ''
    while ((end = this.boundary()) >= 0) {
      const sep = this.pending.startsWith('\r\n', end) ? 4 : 2
      out += this.rewrite(this.pending.slice(0, end)) + this.pending.slice(end, end + sep)
      this.pending = this.pending.slice(end + sep)
    }
    done(null, out === '' ? undefined : out)
  }

  _flush (done: TransformCallback): void {
    this.pending += this.decoder.end()
    done(null, this.pending === '' ? undefined : this.rewrite(this.pending))
  }

  private boundary (): number {
    const lf = this.pending.indexOf('\n\n')
    const crlf = this.pending.indexOf('\r\n\r\n')
    if (lf < 0) return crlf
    return crlf < 0 ? lf : Math.min(lf, crlf)
  }

  private rewrite (event: string): string {
    if (!event.includes('"result"') && !event.includes('"error"')) return event
    const lines = event.split(/\r?\n/)
    const data = lines.filter(l => l.startsWith('data:')).map(l => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n')
    let message: unknown
    try {
      message = JSON.parse(data)
    } catch {
      return event
    }
    const replacement = rewriteMessages(message, this.visit)
    if (replacement === undefined) return event
    return [...lines.filter(l => !l.startsWith('data:')), `data: ${JSON.stringify(replacement)}`].join('\n')
  }
}
