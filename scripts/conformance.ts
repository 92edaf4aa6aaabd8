// npm run conformance: installs the official MCP conformance suite and Node 22 into
// .tools/conformance, runs the server scenarios directly against an SDK upstream and through the
// gateway, prints both lists and their difference; exits non-zero unless the sets are identical
// and the direct run passes every scenario.
import { ensureTools, formatResults, serverTransparency } from '../test/conformance/runner.js'

const tools = await ensureTools()
const result = await serverTransparency(tools)
console.log(formatResults('direct (SDK upstream)', result.direct))
console.log(formatResults('through the gateway', result.gateway))
console.log(`passing only directly: ${result.onlyDirect.join(', ') || 'none'}`)
console.log(`passing only through the gateway: ${result.onlyGateway.join(', ') || 'none'}`)
const directFailures = result.direct.filter(r => !r.passed).length
const transparent = result.onlyDirect.length === 0 && result.onlyGateway.length === 0
console.log(transparent ? 'transparent: the same scenarios pass with and without the gateway' : 'NOT transparent')
process.exitCode = transparent && directFailures === 0 ? 0 : 1
