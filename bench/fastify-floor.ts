import Fastify from 'fastify'
import { Agent, type Dispatcher } from 'undici'
import { forwardableHeaders } from '../src/proxy/client-headers.js'
import { UpstreamExchange, type Relay } from '../src/proxy/relay.js'

/**
 * The `floor` target: Fastify routing one route to the gateway's own relay (the undici dispatch
 * handler of src/proxy/relay.ts, one shared Agent), and nothing else: no auth, no session
 * binding, no logs, no metrics, no hooks. What the gateway would reach if every feature on the
 * proxied path were free, so the gap between `ceiling` and `floor` is Fastify's own, and the gap
 * between `floor` and `gateway` is what the features cost.
 *
 * argv: <port> <upstream origin> <upstream path>; prints "ready" when listening.
 */
const [port, origin, path] = process.argv.slice(2)
const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000 })
const relay: Relay = {
  refuse: reply => { reply.code(502).send() },
  streams: new Set(),
  bindSession: upstreamId => upstreamId,
  watch: () => null,
  upstreamStatus: null
}

const app = Fastify({ logger: false })
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })
app.post('/mcp', (request, reply) => {
  agent.dispatch({
    origin,
    path,
    method: 'POST',
    headers: forwardableHeaders(request.headers) as Record<string, string | string[]>,
    body: request.body as string
  } satisfies Dispatcher.DispatchOptions, new UpstreamExchange(relay, request, reply))
})
await app.listen({ port: Number(port), host: '127.0.0.1' })
console.log('ready')
