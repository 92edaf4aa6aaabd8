// npm run conformance: installs the official MCP conformance suite and Node 22 into
// .tools/conformance, runs the server scenarios directly against an SDK upstream and through the
// gateway, for the revision the SDK speaks and for the next one, and prints both lists and their
// differences; then the authorization scenarios against the gateway's authorization server.
// Exits non-zero unless the gateway changes no outcome, the direct run passes every scenario of
// the SDK's revision and every authorization scenario passes.
import { runAuthorizationScenarios } from '../test/conformance/authorization.js'
import { ensureTools, formatResults, NEXT_SPEC_VERSION, serverTransparency, SPEC_VERSION } from '../test/conformance/runner.js'

const tools = await ensureTools()
let ok = true
for (const specVersion of [SPEC_VERSION, NEXT_SPEC_VERSION]) {
  const result = await serverTransparency(tools, { specVersion })
  console.log(formatResults(`${specVersion}, direct (SDK upstream)`, result.direct))
  console.log(formatResults(`${specVersion}, through the gateway`, result.gateway))
  console.log(`passing only directly: ${result.onlyDirect.join(', ') || 'none'}`)
  console.log(`passing only through the gateway: ${result.onlyGateway.join(', ') || 'none'}`)
  console.log(`checks that came out differently: ${result.changedChecks.join('; ') || 'none'}`)
  const transparent = result.onlyDirect.length + result.onlyGateway.length + result.changedChecks.length === 0
  console.log(`${specVersion}: ${transparent ? 'transparent, the same outcomes with and without the gateway' : 'NOT transparent'}\n`)
  ok &&= transparent && (specVersion !== SPEC_VERSION || result.direct.every(r => r.passed))
}
const authorization = await runAuthorizationScenarios(tools)
console.log(formatResults('authorization server', authorization.results))
if (!authorization.results.every(r => r.passed)) {
  console.log(authorization.output)
  ok = false
}
process.exitCode = ok ? 0 : 1
