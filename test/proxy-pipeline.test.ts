import t from 'tap'
import { buildGateway } from './helper.js'

/**
 * The hooks Fastify runs for a top-level route and one of its methods, by hook name, as
 * printRoutes lists them (`├── /calc/mcp (GET, POST, DELETE)` and a `•` line per hook).
 */
function hooksOf (tree: string, path: string, method: string): Record<string, string[]> {
  const lines = tree.split('\n')
  const at = lines.findIndex(line => {
    const match = /^[├└]── (\S+) \(([^)]*)\)$/.exec(line.trimEnd())
    return match !== null && match[1] === path && match[2].split(', ').includes(method)
  })
  if (at === -1) throw new Error(`no route ${method} ${path}`)
  const hooks: Record<string, string[]> = {}
  for (const line of lines.slice(at + 1)) {
    const match = /• \((\w+)\) (\[.*\])$/.exec(line)
    if (match === null) break
    hooks[match[1]] = JSON.parse(match[2]) as string[]
  }
  return hooks
}

const OAUTH_ONLY = /^(fastifyCookie|helmet)/

t.test('a proxied route runs its own pipeline and none of the authorization server\'s plugins', async t => {
  const app = await buildGateway(t, {
    config: {
      proxies: [
        { pattern: '/calc/mcp', target_url: 'http://127.0.0.1:9/mcp' },
        { pattern: '/policy/mcp', target_url: 'http://127.0.0.1:9/mcp', tools: { allow: ['add'] } }
      ]
    }
  })
  const tree = app.printRoutes({ includeHooks: true, commonPrefix: false })
  const register = hooksOf(tree, '/register', 'POST')
  t.ok(register.onRequest.some(name => OAUTH_ONLY.test(name)), 'the OAuth endpoints do run cookie and helmet hooks (the check can see them)')
  for (const path of ['/calc/mcp', '/policy/mcp']) {
    for (const method of ['POST', 'GET', 'DELETE']) {
      const hooks = hooksOf(tree, path, method)
      const all = Object.values(hooks).flat()
      t.same(all.filter(name => OAUTH_ONLY.test(name)), [], `${method} ${path}: no cookie or helmet hook`)
      t.ok(hooks.onRequest.includes('guardRoute()'), `${method} ${path}: the guard runs`)
      t.ok(hooks.preHandler.includes('inspectToolCalls()'), `${method} ${path}: the tool interceptor runs`)
      t.equal(hooks.preHandler.length, 1, `${method} ${path}: no credential step on an upstream_auth none route`)
    }
  }
})
