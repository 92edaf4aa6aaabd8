import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface MetricsSource {
  contentType: string
  metrics: () => Promise<string>
}

/**
 * `/metrics` on a port of its own (METRICS_PORT), so the scrape endpoint is not public where
 * the main port is. A bare node:http server: it answers one path, GET only, and 404 elsewhere.
 */
export class MetricsListener {
  readonly #server: Server

  constructor (source: MetricsSource, onError: (err: Error) => void) {
    this.#server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n')
        return
      }
      source.metrics().then(body => {
        res.writeHead(200, { 'content-type': source.contentType }).end(body)
      }, (err: Error) => {
        onError(err)
        res.writeHead(500).end()
      })
    })
  }

  async listen (host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    return (this.#server.address() as AddressInfo).port
  }

  async close (): Promise<void> {
    if (!this.#server.listening) return
    this.#server.closeAllConnections()
    await new Promise(resolve => this.#server.close(resolve))
  }
}
