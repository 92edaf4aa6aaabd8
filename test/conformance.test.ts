// The official MCP conformance suite's server scenarios, run directly against the SDK upstream
// and through the gateway: the gateway must be transparent (the same scenarios pass, every check
// comes out the same), and the upstream must pass all of its revision's scenarios, or a
// transparent gateway would prove little. The next revision, which the SDK does not speak yet,
// is compared too: a gateway must not change how a newer client's requests fare.
// The authorization scenarios run against the gateway's authorization server: every one passes.
// Bounded: install ≤ 150 s (once; later runs reuse .tools/conformance), each suite run ≤ 60 s
// with 20 s per scenario.
import t, { type Test } from 'tap'
import { runAuthorizationScenarios } from './conformance/authorization.js'
import { ensureTools, formatResults, NEXT_SPEC_VERSION, serverTransparency, SPEC_VERSION, type Tools } from './conformance/runner.js'

t.setTimeout(300_000)

/** Every server scenario of SPEC_VERSION, all of which the SDK upstream passes. */
const EXPECTED_DIRECT = [
  'completion-complete', 'dns-rebinding-protection', 'elicitation-sep1034-defaults', 'elicitation-sep1330-enums',
  'json-schema-2020-12', 'logging-set-level', 'ping', 'prompts-get-embedded-resource', 'prompts-get-simple',
  'prompts-get-with-args', 'prompts-get-with-image', 'prompts-list', 'resources-list', 'resources-read-binary',
  'resources-read-text', 'resources-subscribe', 'resources-templates-read', 'resources-unsubscribe',
  'server-initialize', 'server-session-lifecycle', 'server-sse-multiple-streams', 'server-sse-polling',
  'tools-call-audio', 'tools-call-elicitation', 'tools-call-embedded-resource', 'tools-call-error',
  'tools-call-image', 'tools-call-mixed-content', 'tools-call-sampling', 'tools-call-simple-text',
  'tools-call-with-logging', 'tools-call-with-progress', 'tools-list'
]

const installed: Promise<Tools | Error> = ensureTools().catch((err: Error) => err)

/** The installed suite, or a failed assertion saying why there is none: never a skip. */
async function suite (t: Test): Promise<Tools | undefined> {
  const tools = await installed
  if (!(tools instanceof Error)) return tools
  t.fail(`the conformance suite is not installed: ${tools.message}`)
  return undefined
}

for (const specVersion of [SPEC_VERSION, NEXT_SPEC_VERSION]) {
  t.test(`server scenarios (${specVersion}): the gateway is transparent`, async t => {
    const tools = await suite(t)
    if (tools === undefined) return
    const result = await serverTransparency(tools, { specVersion })
    t.comment(formatResults('direct (SDK upstream)', result.direct))
    t.comment(formatResults('through the gateway', result.gateway))

    const names = (list: typeof result.direct, passed?: boolean): string[] =>
      list.filter(r => passed === undefined || r.passed === passed).map(r => r.scenario)
    t.same(names(result.gateway), names(result.direct), 'the same scenarios ran both ways')
    if (specVersion === SPEC_VERSION) t.same(names(result.direct, true), EXPECTED_DIRECT, 'the SDK upstream passes every scenario directly')
    t.same(result.onlyDirect, [], 'no scenario passes directly but fails through the gateway')
    t.same(result.onlyGateway, [], 'no scenario passes only through the gateway')
    t.same(result.changedChecks, [], 'every check comes out the same through the gateway')
  })
}

t.test('authorization scenarios: the gateway\'s authorization server passes them all', async t => {
  const tools = await suite(t)
  if (tools === undefined) return
  const { results, output } = await runAuthorizationScenarios(tools)
  t.comment(formatResults('authorization server', results))
  t.same(results.map(r => r.scenario), ['authorization-code-grant', 'authorization-server-metadata-endpoint'], 'both scenarios ran')
  t.same(results.filter(r => !r.passed).map(r => r.scenario), [], 'every scenario passes', { output })
})
