import t from 'tap'
import { resolveResource } from '../../src/oauth/resource.js'

const calc = { pattern: '/calc/mcp', resourceUrl: 'https://gw.example.com/calc/mcp' }
const files = { pattern: '/files/mcp', resourceUrl: 'https://gw.example.com/files/mcp' }
const routes = [calc, files]

t.test('names a configured route, in the spellings clients use', async t => {
  t.equal(resolveResource('https://gw.example.com/calc/mcp', routes), calc)
  t.equal(resolveResource('https://gw.example.com/files/mcp', routes), files)
  t.equal(resolveResource('HTTPS://GW.EXAMPLE.COM/calc/mcp', routes), calc, 'upper-case scheme and host')
  t.equal(resolveResource('https://gw.example.com/calc/mcp/', routes), calc, 'trailing slash')
  t.equal(resolveResource('https://gw.example.com:443/calc/mcp', routes), calc, 'default port')
  t.equal(resolveResource(['https://gw.example.com/files/mcp'], routes), files, 'a single repeated-param array')
  const local = { pattern: '/calc/mcp', resourceUrl: 'http://127.0.0.1:8080/calc/mcp' }
  t.equal(resolveResource('http://127.0.0.1:8080/calc/mcp', [local]), local)
})

t.test('anything else is invalid_target', async t => {
  const cases: Array<[string | string[] | undefined, RegExp]> = [
    ['https://gw.example.com/other/mcp', /is not an MCP server of this gateway/],
    ['https://gw.example.com/CALC/mcp', /is not an MCP server/],
    ['https://gw.example.com/calc/mcp//', /is not an MCP server/],
    ['https://gw.example.com/calc/mcp?x=1', /is not an MCP server/],
    ['https://gw.example.com:8443/calc/mcp', /is not an MCP server/],
    ['http://gw.example.com/calc/mcp', /is not an MCP server/],
    ['https://evil.example/calc/mcp', /is not an MCP server/],
    ['https://gw.example.com/calc/mcp#x', /fragment/],
    ['/calc/mcp', /absolute http\(s\) URL/],
    ['urn:example:calc', /absolute http\(s\) URL/],
    [['https://gw.example.com/calc/mcp', 'https://gw.example.com/files/mcp'], /exactly one resource/],
    [[], /exactly one resource/],
    [undefined, /resource is required/]
  ]
  for (const [resource, message] of cases) {
    t.throws(() => resolveResource(resource, routes),
      { code: 'invalid_target', statusCode: 400, message }, JSON.stringify(resource))
  }
})

t.test('a missing resource means the only route when there is one', async t => {
  t.equal(resolveResource(undefined, [files]), files)
  t.throws(() => resolveResource(undefined, []), { code: 'invalid_target' })
})
