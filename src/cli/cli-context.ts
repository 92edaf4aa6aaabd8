import 'dotenv/config'
import { loadGatewayConfig, type GatewayConfig } from '../config/gateway-config.js'
import { openStore } from '../store/open-store.js'
import type { Store } from '../store/store.js'

export interface CliContext { config: GatewayConfig, store: Store }

/** The same configuration and store the gateway would use, for operator commands. */
export async function openCliContext (): Promise<CliContext> {
  const config = loadGatewayConfig({ env: process.env })
  const { store } = await openStore(config.env, { warn: (obj, msg) => console.error(msg, obj) })
  return { config, store }
}

/** Runs an operator command: its result on stdout, a failure as one line on stderr, exit 1. */
export function runCli (main: () => Promise<string>): void {
  main().then(out => {
    process.stdout.write(out + '\n')
    process.exit(0)
  }, (err: Error) => {
    process.stderr.write(`${err.message}\n`)
    process.exit(1)
  })
}

/** `--name value` pairs. */
export function parseFlags (argv: string[], known: readonly string[]): Record<string, string> {
  const flags: Record<string, string> = {}
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]
    const value = argv[i + 1]
    if (!name.startsWith('--') || !known.includes(name.slice(2))) throw new Error(`unknown option ${name} (known: ${known.map(k => '--' + k).join(' ')})`)
    if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`)
    flags[name.slice(2)] = value
  }
  return flags
}

/** "90", "90s", "30m", "1h", "7d" → seconds. */
export function parseDuration (value: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(value)
  if (match === null) throw new Error(`--ttl "${value}" is not a duration like 3600, 30m, 1h or 7d`)
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd']
  return Number(match[1]) * unit
}
