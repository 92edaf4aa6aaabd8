import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'

// The demo as a user runs it: its own process, its own gateway, provider and sample server.
const demo = (...args: string[]): ChildProcess => spawn(process.execPath, ['--import', 'tsx', 'demo/run.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })

/** Collects the output; resolves with the exit code (bounded: killed after `ms`). */
async function finished (child: ChildProcess, out: { text: string }, ms: number): Promise<number | null> {
  child.stdout?.on('data', (chunk: Buffer) => { out.text += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { out.text += chunk.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), ms)
  return await new Promise(resolve => child.once('exit', code => {
    clearTimeout(timer)
    resolve(code)
  }))
}

t.test('npm run demo walks through every step, prints no whole token, and exits 0', async t => {
  const out = { text: '' }
  t.equal(await finished(demo(), out, 60_000), 0, 'exits 0', { output: out.text })
  const steps: Array<[string, RegExp]> = [
    ['challenge', /Challenge[^]*→ 401\n\s+WWW-Authenticate: Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/calc\/mcp"/],
    ['discovery', /Discovery[^]*GET \S+\/\.well-known\/oauth-protected-resource\/calc\/mcp → 200[^]*GET \S+\/\.well-known\/oauth-authorization-server → 200/],
    ['registration', /registration[^]*POST \S+\/oauth\/register → 201\n\s+client_id: \S+/],
    ['consent', /Consent[^]*the consent page was shown[^]*approves/],
    ['login', /Provider login[^]*as demo@example\.com/],
    ['token', /Token[^]*POST \S+\/oauth\/token → 200\n\s+access token \S+… #\w+ \(ES256 JWT\), expires in \d+ s, scope "mcp"\n\s+audience http:\/\/127\.0\.0\.1:\d+\/calc\/mcp/],
    ['tools/call', /tools\/call add \{a: 2, b: 3\} → 5\n/],
    ['refresh', /Refresh[^]*refresh token \S+ #\w+ → \S+ #\w+ \(rotated/],
    ['revocation', /Revocation[^]*\/oauth\/revoke → 200\n\s+the revoked access token \S+ #\w+ now gets 401/],
    ['success', /All steps passed\./]
  ]
  for (const [name, pattern] of steps) t.match(out.text, pattern, name)
  t.notMatch(out.text, /eyJ[\w-]+\.eyJ[\w-]+\./, 'no JWT')
  t.notMatch(out.text, /Still running/, 'stops without --keep')
})

t.test('--keep leaves the gateway answering until Ctrl-C, then stops cleanly', async t => {
  const child = demo('--keep')
  const out = { text: '' }
  const exit = finished(child, out, 60_000)
  // Bounded: the walk-through prints the MCP URL within the demo's own 30 s limit.
  const url = await new Promise<string>((resolve, reject) => {
    const poll = setInterval(() => {
      const match = /MCP server URL:\s+(\S+)/.exec(out.text)
      if (match !== null) {
        clearInterval(poll)
        resolve(match[1])
      } else if (child.exitCode !== null) {
        clearInterval(poll)
        reject(new Error(out.text))
      }
    }, 100)
  })
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/calc\/mcp$/, 'a loopback MCP URL')
  t.match(out.text, /logs you in as demo@example\.com/, 'says who logins become')
  t.equal((await fetch(url, { method: 'POST' })).status, 401, 'still running: a client gets the challenge')
  child.kill('SIGINT')
  t.equal(await exit, 0, 'exits 0 on SIGINT', { output: out.text })
  t.match(out.text, /Stopped\./, 'says it stopped')
  await t.rejects(fetch(url, { method: 'POST' }), 'closed')
})
