/**
 * Variables that look like the gateway's but are not (`OAUTH_GOOGLE_CLIENTID`, `REDIS_SENTINEL`):
 * the gateway would silently ignore them, so start-up names the setting that was probably meant.
 * Only names with one of the gateway's prefixes (`OAUTH_`, `REDIS_`, …, taken from its own
 * settings) and a close known name are reported; values are never read.
 */
import { EnvSchema } from './env.js'

const KNOWN = Object.keys(EnvSchema.properties)
const PREFIXES = new Set(KNOWN.filter(name => name.includes('_')).map(name => name.slice(0, name.indexOf('_') + 1)))
/** Two typing slips (a dropped underscore, a plural, a swapped letter) — not another word. */
const MAX_DISTANCE = 2
/** Longer names are nobody's typo of ours; skipping them keeps the check cheap for any environment. */
const MAX_NAME_LENGTH = 64

/** Levenshtein distance, or MAX_DISTANCE + 1 as soon as it must exceed MAX_DISTANCE. */
function distance (a: string, b: string): number {
  if (Math.abs(a.length - b.length) > MAX_DISTANCE) return MAX_DISTANCE + 1
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    if (Math.min(...current) > MAX_DISTANCE) return MAX_DISTANCE + 1
    previous = current
  }
  return previous[b.length]
}

/** The closest known setting to an unknown variable name, when it is close enough to be a slip. */
function closestSetting (name: string): string | undefined {
  const upper = name.toUpperCase()
  const prefix = upper.slice(0, upper.indexOf('_') + 1)
  if (name.length > MAX_NAME_LENGTH || !PREFIXES.has(prefix)) return undefined
  let best: { name: string, distance: number } | undefined
  for (const known of KNOWN) {
    const d = distance(upper, known)
    if (d <= MAX_DISTANCE && (best === undefined || d < best.distance)) best = { name: known, distance: d }
  }
  return best?.name
}

/** One start-up warning per variable that is probably a misspelt setting; names only, never values. */
export function misspeltSettings (variables: Record<string, string | undefined>): string[] {
  const warnings: string[] = []
  for (const name of Object.keys(variables)) {
    if (name in EnvSchema.properties) continue
    const meant = closestSetting(name)
    if (meant !== undefined) warnings.push(`${name} is not a setting of the gateway and is ignored; did you mean ${meant}?`)
  }
  return warnings
}
