import { ConfigError, parseConfigUrl } from '../config/config-error.js'

export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio'

/** The OTEL_* variables as config/env.ts parses them; declared here so that env.ts can check them without an import cycle. */
export interface OtelEnv {
  OTEL_SDK_DISABLED: boolean
  OTEL_TRACES_EXPORTER?: 'otlp' | 'none'
  OTEL_EXPORTER_OTLP_ENDPOINT?: string
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string
  OTEL_SERVICE_NAME: string
  OTEL_TRACES_SAMPLER: SamplerName
  OTEL_TRACES_SAMPLER_ARG?: string
}

export interface TracingSettings {
  /** Where spans are POSTed (OTLP/HTTP, JSON). */
  url: string
  serviceName: string
  sampler: SamplerName
  /** For the traceidratio samplers. */
  ratio: number
}

/**
 * Tracing from the standard OTEL_* variables, or null when they leave it off: it is on only
 * when an OTLP endpoint is set (or OTEL_TRACES_EXPORTER=otlp asks for the default one), so a
 * deployment that configures nothing pays nothing.
 */
export function tracingSettings (env: OtelEnv): TracingSettings | null {
  if (env.OTEL_SDK_DISABLED || env.OTEL_TRACES_EXPORTER === 'none') return null
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT
  if (tracesEndpoint === undefined && base === undefined && env.OTEL_TRACES_EXPORTER !== 'otlp') return null
  // The signal-specific variable is the whole URL; the general one is a base the path is added to.
  const url = tracesEndpoint ?? `${(base ?? 'http://localhost:4318').replace(/\/+$/, '')}/v1/traces`
  checkUrl(url, tracesEndpoint !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT')
  const ratio = env.OTEL_TRACES_SAMPLER_ARG === undefined ? 1 : Number(env.OTEL_TRACES_SAMPLER_ARG)
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new ConfigError('OTEL_TRACES_SAMPLER_ARG', 'must be a number from 0 to 1')
  return { url, serviceName: env.OTEL_SERVICE_NAME, sampler: env.OTEL_TRACES_SAMPLER, ratio }
}

function checkUrl (value: string, name: string): void {
  const url = parseConfigUrl(value, name)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(name, 'must be an http(s) URL')
}
