/** A configuration mistake: start-up stops with this one message naming the culprit. */
export class ConfigError extends Error {
  constructor (readonly setting: string, problem: string) {
    super(`Invalid configuration: ${setting} ${problem}`)
    this.name = 'ConfigError'
  }
}
