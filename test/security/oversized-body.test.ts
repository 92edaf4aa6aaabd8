import t from 'tap'
import { connect } from 'node:net'
import { buildGateway, mintToken } from '../helper.js'

/**
 * A client that declares a body over the limit and keeps uploading while the gateway answers
 * 413 must still read that answer: a connection closed on unread data resets, and the reset
 * can overtake the 413. The client here reads only after its upload ends, the slowest reader.
 */
async function uploadThenRead (port: number, head: string, bytes: number): Promise<string> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.pause()
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
    socket.on('error', err => { resolve(`${answer}|${(err as NodeJS.ErrnoException).code ?? 'error'}`) })
    socket.on('close', () => { resolve(answer) })
    socket.write(head)
    const chunk = Buffer.alloc(64 * 1024, 'x')
    let sent = 0
    const more = (): void => {
      while (sent < bytes) {
        sent += chunk.length
        if (!socket.write(chunk)) { socket.once('drain', more); return }
      }
      // Everything written: only now read what came back.
      socket.resume()
      setTimeout(() => socket.end(), 200)
    }
    more()
  })
}

t.test('a body over the limit gets its 413 even when the client reads only after uploading', async t => {
  const app = await buildGateway(t, { listen: true, config: { proxies: [{ pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' }] } })
  const { port } = app.server.address() as { port: number }
  const token = mintToken(app, '/calc/mcp')
  const bytes = 6 * 1024 * 1024
  const proxied = await uploadThenRead(port, `POST /calc/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${bytes}\r\n\r\n`, bytes)
  t.match(proxied, /^HTTP\/1\.1 413 /, 'the proxied route answers 413')
  const oauth = await uploadThenRead(port, `POST /oauth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${bytes}\r\n\r\n`, bytes)
  t.match(oauth, /^HTTP\/1\.1 413 /, 'an OAuth endpoint answers 413')
})
