import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startAuthorizationServer } from '../fixtures/authorization.js'
import { TestBrowser } from '../fixtures/browser.js'
import { freePort } from '../helper.js'
import { readResults, ROUTE, TOOLS_DIR, type ScenarioResult, type Tools } from './runner.js'

export interface AuthorizationRun { results: ScenarioResult[], output: string }

/**
 * The suite's `authorization` scenarios against the gateway's authorization server. The suite
 * prints an authorize URL and waits for the redirect on its own callback server on 127.0.0.1;
 * here a scripted browser follows that URL through the consent page and the in-process OIDC
 * provider's login and delivers the redirect, as a person in a browser would.
 */
export async function runAuthorizationScenarios (tools: Tools, opts: { outDir?: string, totalTimeoutMs?: number } = {}): Promise<AuthorizationRun> {
  const outDir = opts.outDir ?? join(TOOLS_DIR, 'results/authorization')
  rmSync(outDir, { recursive: true, force: true })
  const cleanups: Array<() => unknown> = []
  try {
    const setup = await startAuthorizationServer({ teardown: fn => cleanups.push(fn) }, {
      // The route only has to exist, as the token's resource: nothing is proxied to it.
      config: { proxies: [{ pattern: ROUTE, target_url: 'http://127.0.0.1:9/mcp' }] }
    })
    const callbackPort = await freePort()
    const redirectUri = `http://127.0.0.1:${callbackPort}/callback`
    const registration = await fetch(`${setup.base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'MCP conformance suite', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' })
    })
    if (registration.status !== 201) throw new Error(`client registration answered ${registration.status}: ${await registration.text()}`)
    const { client_id: clientId } = await registration.json() as { client_id: string }

    const child = spawn(tools.node, [
      tools.cli, 'authorization', '--url', setup.base, '--client-id', clientId, '--resource', setup.base + ROUTE,
      '--port', String(callbackPort), '--output-dir', outDir
    ], { stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.totalTimeoutMs ?? 60_000, killSignal: 'SIGKILL' })
    const output: string[] = []
    const logins: Array<Promise<void>> = []
    let callbackListening: () => void = () => {}
    const listening = new Promise<void>(resolve => { callbackListening = resolve })
    child.stderr.on('data', (c: Buffer) => output.push(c.toString('utf8')))
    createInterface({ input: child.stdout }).on('line', line => {
      output.push(line + '\n')
      // The suite prints the URL before its callback server is listening, and says when it is.
      if (line.startsWith('Callback server started:')) callbackListening()
      if (!line.startsWith(`${setup.base}/oauth/authorize?`)) return
      logins.push((async () => {
        const redirect = await new TestBrowser().authorize(line, redirectUri)
        await listening
        await (await fetch(redirect)).text()
      })().catch(err => { output.push(`login failed: ${(err as Error).message}\n`) }))
    })
    const exit = await new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, signal) => {
        // A login still waiting for the callback server gives up when the suite is gone.
        callbackListening()
        resolve({ code, signal })
      })
    })
    await Promise.all(logins)
    const text = output.join('')
    if (exit.signal !== null) throw new Error(`conformance authorization run was killed (${exit.signal}) after its time limit:\n${text.slice(-2000)}`)
    const results = readResults(outDir, 'authorization-server')
    if (results.length === 0) throw new Error(`conformance authorization run produced no results (exit ${String(exit.code)}):\n${text.slice(-2000)}`)
    return { results, output: text }
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}
