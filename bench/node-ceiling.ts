import { createServer } from 'node:http'
import { Pool } from 'undici'

/**
 * The `node-ceiling` target: the smallest honest Node proxy, what no Node gateway can beat on
 * this machine. node:http in front, one undici Pool to the upstream, request and response
 * bodies buffered (as the gateway buffers small JSON), hop-by-hop headers dropped, no auth, no
 * logs, no metrics. SSE is not part of it (the bench times SSE against direct).
 *
 * argv: <port> <upstream origin> <upstream path>; prints "ready" when listening.
 */
const [port, origin, path] = process.argv.slice(2)
const pool = new Pool(origin, { connections: 256, keepAliveTimeout: 30_000 })
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length'])

createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.once('end', () => {
    const headers: Record<string, string | string[]> = {}
    for (const name in req.headers) if (!HOP_BY_HOP.has(name)) headers[name] = req.headers[name] as string | string[]
    pool.request({ method: req.method as 'POST', path, headers, body: Buffer.concat(chunks) }).then(async upstream => {
      const body = Buffer.from(await upstream.body.arrayBuffer())
      const out: Record<string, string | string[]> = {}
      for (const name in upstream.headers) if (!HOP_BY_HOP.has(name)) out[name] = upstream.headers[name] as string | string[]
      out['content-length'] = String(body.length)
      res.writeHead(upstream.statusCode, out).end(body)
    }, () => { res.writeHead(502).end() })
  })
}).listen(Number(port), '127.0.0.1', () => { console.log('ready') })
