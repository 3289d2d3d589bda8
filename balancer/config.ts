import { Type } from 'typebox'
import { ConfigError, readEnv } from '../lib/config.ts'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** The balancer's environment: every variable it reads, with its default. */
export const BalancerEnvSchema = Type.Object({
  UPSTREAMS: Type.String({
    // A first, coarse check so readEnv reports a wrong shape by name; each
    // entry is then parsed as a URL by parseUpstreams.
    pattern: '^\\s*http://[^,\\s]+(\\s*,\\s*http://[^,\\s]+)*\\s*,?\\s*$',
    description: 'must be a comma-separated list of http:// URLs, e.g. http://127.0.0.1:3001,http://127.0.0.1:3002'
  }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'must be a port number from 0 to 65535' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'must be an address to listen on, e.g. 0.0.0.0' }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)), { default: 'info' }),
  BALANCER_ID: Type.String({ minLength: 1, default: 'balancer', description: 'must be a non-empty name' }),
  HEALTH_INTERVAL_MS: Type.Integer({ minimum: 10, default: 1000, description: 'must be an integer number of milliseconds, at least 10' }),
  HEALTH_TIMEOUT_MS: Type.Integer({ minimum: 10, default: 500, description: 'must be an integer number of milliseconds, at least 10' }),
  PROXY_TIMEOUT_MS: Type.Integer({ minimum: 10, default: 10_000, description: 'must be an integer number of milliseconds, at least 10' })
})

export type LogLevel = typeof LOG_LEVELS[number]

export interface BalancerConfig {
  /** Normalised upstream base URLs, e.g. `http://127.0.0.1:3001` (no trailing slash). */
  upstreams: string[]
  port: number
  host: string
  logLevel: LogLevel
  balancerId: string
  /** How often every upstream's `/health` is polled. */
  healthIntervalMs: number
  /** How long a health check may take before the upstream counts as down. */
  healthTimeoutMs: number
  /** How long an upstream may stay silent on a proxied request before the client gets a 504. */
  proxyTimeoutMs: number
}

/**
 * Parses and normalises a list of upstream URLs. Throws an Error whose
 * message names the bad entry; used for the environment and for
 * `setUpstreams` at run time alike.
 */
export function parseUpstreams (list: readonly string[]): string[] {
  const seen = new Set<string>()
  for (const raw of list) {
    const entry = raw.trim()
    if (entry === '') continue
    let url: URL
    try {
      url = new URL(entry)
    } catch {
      throw new Error(`${JSON.stringify(entry)} is not a URL`)
    }
    if (url.protocol !== 'http:') throw new Error(`${JSON.stringify(entry)} must use http://`)
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new Error(`${JSON.stringify(entry)} must not carry credentials, a query or a fragment`)
    }
    seen.add(`${url.origin}${url.pathname.replace(/\/+$/, '')}`)
  }
  return [...seen]
}

/** Validates the environment; throws a ConfigError naming every bad variable. */
export function loadBalancerConfig (env: Record<string, string | undefined>): BalancerConfig {
  const raw = readEnv(BalancerEnvSchema, env)
  let upstreams: string[]
  try {
    upstreams = parseUpstreams(raw.UPSTREAMS.split(','))
  } catch (err) {
    throw new ConfigError([`UPSTREAMS: ${(err as Error).message} (got ${JSON.stringify(raw.UPSTREAMS)})`])
  }
  if (upstreams.length === 0) throw new ConfigError([`UPSTREAMS must name at least one URL (got ${JSON.stringify(raw.UPSTREAMS)})`])
  return {
    upstreams,
    port: raw.PORT,
    host: raw.HOST,
    logLevel: raw.LOG_LEVEL,
    balancerId: raw.BALANCER_ID,
    healthIntervalMs: raw.HEALTH_INTERVAL_MS,
    healthTimeoutMs: raw.HEALTH_TIMEOUT_MS,
    proxyTimeoutMs: raw.PROXY_TIMEOUT_MS
  }
}
