import { Type } from 'typebox'
import { ConfigError, readEnv } from '../lib/config.ts'
import { DEFAULT_POOL, parseRoutes, poolVariableSuffix } from './routes.ts'
import type { Route } from './routes.ts'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export const STRATEGIES = ['round-robin', 'sticky'] as const

/** The largest request body the balancer forwards by default: 1 MiB, nginx's client_max_body_size. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
const MIN_BODY_LIMIT = 16 * 1024
const MAX_BODY_LIMIT = 1024 * 1024 * 1024
/** The most BALANCER_THREADS may ask for. */
export const MAX_THREADS = 64

/** The balancer's environment: every variable it reads, with its default. */
export const BalancerEnvSchema = Type.Object({
  // Exactly one of UPSTREAMS and UPSTREAMS_DNS; loadBalancerConfig checks that.
  UPSTREAMS: Type.Optional(Type.String({
    // A first, coarse check so readEnv reports a wrong shape by name; each
    // entry is then parsed as a URL by parseUpstreams.
    pattern: '^\\s*http://[^,\\s]+(\\s*,\\s*http://[^,\\s]+)*\\s*,?\\s*$',
    description: 'must be a comma-separated list of http:// URLs, e.g. http://127.0.0.1:3001,http://127.0.0.1:3002'
  })),
  UPSTREAMS_DNS: Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$',
    description: 'must be host:port, e.g. app:3000 (every address the host name resolves to, on that port)'
  })),
  // Path prefixes to named pools, in order (routes.ts): ROUTES=/login:issuer,/token/:issuer. Each
  // pool named is UPSTREAMS_<NAME> or UPSTREAMS_DNS_<NAME>, with STRATEGY_<NAME> optional:
  // variables whose names follow the pool's, so they are read by loadBalancerConfig, not here.
  ROUTES: Type.Optional(Type.String({ description: 'must be a comma-separated list of prefix:pool, e.g. /login:issuer,/token/:issuer' })),
  DNS_INTERVAL_MS: Type.Integer({ minimum: 100, default: 1000, description: 'must be an integer number of milliseconds, at least 100' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'must be a port number from 0 to 65535' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'must be an address to listen on, e.g. 0.0.0.0' }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)), { default: 'info' }),
  BALANCER_ID: Type.String({ minLength: 1, default: 'balancer', description: 'must be a non-empty name' }),
  HEALTH_INTERVAL_MS: Type.Integer({ minimum: 10, default: 1000, description: 'must be an integer number of milliseconds, at least 10' }),
  HEALTH_TIMEOUT_MS: Type.Integer({ minimum: 10, default: 500, description: 'must be an integer number of milliseconds, at least 10' }),
  HEALTH_FALL: Type.Integer({ minimum: 1, maximum: 100, default: 2, description: 'must be a whole number of failed health checks in a row, from 1 to 100' }),
  PROXY_TIMEOUT_MS: Type.Integer({ minimum: 10, default: 10_000, description: 'must be an integer number of milliseconds, at least 10' }),
  STRATEGY: Type.Union(STRATEGIES.map((s) => Type.Literal(s)), { default: 'round-robin', description: 'must be round-robin or sticky' }),
  // nginx's client_max_body_size is 1m by default. The floor keeps the app servers' own 16 KiB
  // limit reachable (their 413 says more than ours); the ceiling keeps a typo from meaning "no limit".
  // Threads that proxy, sharing one listening port (threads.ts). Past 64 it is a typo, not a machine.
  BALANCER_THREADS: Type.Integer({ minimum: 1, maximum: MAX_THREADS, default: 1, description: `must be a whole number of threads from 1 to ${MAX_THREADS}` }),
  MAX_BODY_BYTES: Type.Integer({ minimum: MIN_BODY_LIMIT, maximum: MAX_BODY_LIMIT, default: DEFAULT_MAX_BODY_BYTES, description: `must be a whole number of bytes from ${MIN_BODY_LIMIT} (16 KiB) to ${MAX_BODY_LIMIT} (1 GiB)` })
})

export type LogLevel = typeof LOG_LEVELS[number]
/** round-robin: each request to the next healthy upstream. sticky: a cookie pins each client to one. */
export type Strategy = typeof STRATEGIES[number]

export interface BalancerConfig {
  /** Normalised upstream base URLs, e.g. `http://127.0.0.1:3001` (no trailing slash). */
  upstreams: string[]
  port: number
  host: string
  logLevel: LogLevel
  balancerId: string
  /** How often every upstream's `/health` is polled. */
  healthIntervalMs: number
  /** How long a health check may take before it counts as failed. */
  healthTimeoutMs: number
  /**
   * Failed health checks in a row (timed out, 5xx, reset) before the upstream is taken out,
   * like haproxy's `fall`: one slow answer on a busy machine is not a dead server. A refused
   * connection takes it out at once: nothing listens there. Optional for callers; default 2.
   */
  healthFall?: number
  /** How long an upstream may stay silent on a proxied request before the client gets a 504. */
  proxyTimeoutMs: number
  /** How upstreams are chosen; default round-robin. */
  strategy?: Strategy
  /**
   * The largest request body forwarded, in bytes; a larger one is a 413 from the balancer
   * itself, before (Content-Length) or while (chunked) it is sent. Default 1 MiB.
   */
  maxBodyBytes?: number
  /**
   * Threads that proxy, sharing one listening port, with one round-robin counter and one set of
   * health checks (threads.ts). Optional for callers; default 1, everything on the main thread.
   */
  threads?: number
  /**
   * Set by UPSTREAMS_DNS instead of UPSTREAMS: the upstreams are every address `hostname`
   * resolves to, looked up again every `intervalMs` (e.g. Compose replicas of one service).
   */
  dns?: { hostname: string, port: number, intervalMs: number }
  /**
   * Pools besides the default one (the upstreams above), each named by ROUTES, with its own
   * upstreams, strategy and health checks. Absent when ROUTES is unset: everything goes to the default pool.
   */
  pools?: PoolConfig[]
  /** Path prefixes to pools (a name from `pools`, or `default`), tried in order. */
  routes?: Route[]
}

/** A named pool (UPSTREAMS_<NAME> or UPSTREAMS_DNS_<NAME>, STRATEGY_<NAME>). */
export interface PoolConfig {
  name: string
  /** Normalised base URLs; empty when `dns` finds them. */
  upstreams: string[]
  dns?: { hostname: string, port: number, intervalMs: number }
  strategy: Strategy
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
  // Which of the two upstream sources is set is checked here, so that a missing one is
  // reported together with every other bad variable readEnv finds.
  const given = (name: string): boolean => env[name] !== undefined && env[name] !== ''
  const problems: string[] = []
  if (!given('UPSTREAMS') && !given('UPSTREAMS_DNS')) {
    problems.push('UPSTREAMS must be a comma-separated list of http:// URLs, or set UPSTREAMS_DNS=host:port to find them in DNS (it is not set)')
  } else if (given('UPSTREAMS') && given('UPSTREAMS_DNS')) {
    problems.push(`UPSTREAMS and UPSTREAMS_DNS are both set: set only one (got ${JSON.stringify(env.UPSTREAMS)} and ${JSON.stringify(env.UPSTREAMS_DNS)})`)
  }
  let raw
  try {
    raw = readEnv(BalancerEnvSchema, env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    throw new ConfigError([...problems, ...err.problems])
  }
  if (problems.length > 0) throw new ConfigError(problems)

  const source = upstreamSource('UPSTREAMS', raw.UPSTREAMS, 'UPSTREAMS_DNS', raw.UPSTREAMS_DNS, raw.DNS_INTERVAL_MS, problems)
  const named = raw.ROUTES === undefined ? undefined : loadPools(raw.ROUTES, env, raw.DNS_INTERVAL_MS, problems)
  if (raw.ROUTES === undefined) strayPoolVariables(env, [], problems)
  if (problems.length > 0) throw new ConfigError(problems)
  const { upstreams, dns } = source
  return {
    upstreams,
    port: raw.PORT,
    host: raw.HOST,
    logLevel: raw.LOG_LEVEL,
    balancerId: raw.BALANCER_ID,
    healthIntervalMs: raw.HEALTH_INTERVAL_MS,
    healthTimeoutMs: raw.HEALTH_TIMEOUT_MS,
    healthFall: raw.HEALTH_FALL,
    proxyTimeoutMs: raw.PROXY_TIMEOUT_MS,
    strategy: raw.STRATEGY,
    maxBodyBytes: raw.MAX_BODY_BYTES,
    threads: raw.BALANCER_THREADS,
    ...(dns === undefined ? {} : { dns }),
    ...(named === undefined ? {} : named)
  }
}

const URLS_SHAPE = /^\s*http:\/\/[^,\s]+(\s*,\s*http:\/\/[^,\s]+)*\s*,?\s*$/
const DNS_SHAPE = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$/

/** One pool's upstreams, from its list of URLs or its DNS name (exactly one is set), with problems named by variable. */
function upstreamSource (listName: string, list: string | undefined, dnsName: string, dnsValue: string | undefined, intervalMs: number, problems: string[]): { upstreams: string[], dns?: BalancerConfig['dns'] } {
  if (list !== undefined) {
    let upstreams: string[] = []
    try {
      upstreams = parseUpstreams(list.split(','))
    } catch (err) {
      problems.push(`${listName}: ${(err as Error).message} (got ${JSON.stringify(list)})`)
      return { upstreams }
    }
    if (upstreams.length === 0) problems.push(`${listName} must name at least one URL (got ${JSON.stringify(list)})`)
    return { upstreams }
  }
  if (dnsValue !== undefined) {
    const colon = dnsValue.lastIndexOf(':')
    const port = Number(dnsValue.slice(colon + 1))
    if (port < 1 || port > 65535) {
      problems.push(`${dnsName} must name a port from 1 to 65535 (got ${JSON.stringify(dnsValue)})`)
      return { upstreams: [] }
    }
    return { upstreams: [], dns: { hostname: dnsValue.slice(0, colon), port, intervalMs } }
  }
  return { upstreams: [] }
}

/**
 * ROUTES and the variables of each pool it names: UPSTREAMS_<NAME> (http:// URLs) or
 * UPSTREAMS_DNS_<NAME> (host:port), exactly one, and STRATEGY_<NAME> (round-robin by default).
 * A pool variable that no route names is refused too: it is a typo, or a pool nobody reaches.
 */
function loadPools (routesValue: string, env: Record<string, string | undefined>, intervalMs: number, problems: string[]): { pools: PoolConfig[], routes: Route[] } | undefined {
  let routes: Route[]
  try {
    routes = parseRoutes(routesValue)
  } catch (err) {
    problems.push(`ROUTES: ${(err as Error).message} (got ${JSON.stringify(routesValue)})`)
    return undefined
  }
  const names = [...new Set(routes.map((r) => r.pool).filter((name) => name !== DEFAULT_POOL))]
  const given = (name: string): string | undefined => env[name] === undefined || env[name] === '' ? undefined : env[name]
  const pools: PoolConfig[] = []
  for (const name of names) {
    const suffix = poolVariableSuffix(name)
    const listName = `UPSTREAMS_${suffix}`
    const dnsName = `UPSTREAMS_DNS_${suffix}`
    const list = given(listName)
    const dnsValue = given(dnsName)
    if (list === undefined && dnsValue === undefined) {
      problems.push(`${listName} must be a comma-separated list of http:// URLs, or set ${dnsName}=host:port: ROUTES sends requests to the pool ${name} (it is not set)`)
      continue
    }
    if (list !== undefined && dnsValue !== undefined) {
      problems.push(`${listName} and ${dnsName} are both set: set only one (got ${JSON.stringify(list)} and ${JSON.stringify(dnsValue)})`)
      continue
    }
    if (list !== undefined && !URLS_SHAPE.test(list)) {
      problems.push(`${listName} must be a comma-separated list of http:// URLs, e.g. http://127.0.0.1:3101 (got ${JSON.stringify(list)})`)
      continue
    }
    if (dnsValue !== undefined && !DNS_SHAPE.test(dnsValue)) {
      problems.push(`${dnsName} must be host:port, e.g. issuer:3100 (got ${JSON.stringify(dnsValue)})`)
      continue
    }
    const strategyName = `STRATEGY_${suffix}`
    const strategy = given(strategyName) ?? 'round-robin'
    if (!(STRATEGIES as readonly string[]).includes(strategy)) {
      problems.push(`${strategyName} must be one of ${STRATEGIES.join(', ')} (got ${JSON.stringify(strategy)})`)
      continue
    }
    pools.push({ name, strategy: strategy as Strategy, ...upstreamSource(listName, list, dnsName, dnsValue, intervalMs, problems) })
  }
  strayPoolVariables(env, names, problems)
  return { pools, routes }
}

/**
 * UPSTREAMS_DNS is the default pool's; every other UPSTREAMS_* or STRATEGY_* names a pool, and
 * one that no route names is a typo (UPSTREAMS_ISUER) or a pool nobody reaches: refused by name.
 */
function strayPoolVariables (env: Record<string, string | undefined>, names: string[], problems: string[]): void {
  const known = new Set(names.map(poolVariableSuffix))
  for (const [variable, value] of Object.entries(env)) {
    const match = /^(?:UPSTREAMS_DNS_|UPSTREAMS_|STRATEGY_)(.+)$/.exec(variable)
    if (match === null || variable === 'UPSTREAMS_DNS' || value === undefined || value === '') continue
    if (!known.has(match[1] as string)) {
      problems.push(names.length === 0
        ? `${variable} is set, but ROUTES is not: set ROUTES=/prefix:pool,... to send requests to that pool`
        : `${variable} is set, but ROUTES names no pool it belongs to (pools in ROUTES: ${names.join(', ')})`)
    }
  }
}
