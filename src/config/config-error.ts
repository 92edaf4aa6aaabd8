/** A configuration mistake: start-up stops with this one message naming the culprit. */
export class ConfigError extends Error {
  constructor (readonly setting: string, problem: string) {
    super(`Invalid configuration: ${setting} ${problem}`)
    this.name = 'ConfigError'
  }
}

/** `value` as a URL, or a ConfigError naming the entry it came from. */
export function parseConfigUrl (value: string, where: string): URL {
  try {
    return new URL(value)
  } catch {
    throw new ConfigError(where, `"${value}" is not a URL`)
  }
}
