import { baseMode } from '../compare/mode-names.ts'

/** The input is not a compare report scale can plan from: the CLI prints the message and exits 2. */
export class ScaleInputError extends Error {
  override name = 'ScaleInputError'
}

export type StoreKind = 'redis' | 'postgres' | null

/** What one mode's row of a compare JSON says, per request, that a plan needs. */
export interface MeasuredMode {
  /** The row's name (`jwt#2` when a mode ran twice). */
  name: string
  /** The mode it stands for. */
  mode: string
  /** req/s measured here: context only, nothing is planned from it. */
  rps: number
  /** All app servers' CPU per request, µs (the whole request). */
  serverUsPerRequest: number
  balancerUsPerRequest: number
  /** Round trips to the session store per request: Redis commands, or PostgreSQL statements. */
  storeTripsPerRequest: number
  /** The store those trips go to. */
  store: StoreKind
  /** Commands to a shared Redis cache in front of PostgreSQL per request; 0 without one. */
  cacheCommandsPerRequest: number
  /** The run's own Redis's CPU per request, µs; null when the JSON has none (written before compare read it). */
  redisUsPerRequest: number | null
  /** The run's own PostgreSQL's CPU per request (postmaster and backends), µs; null when the JSON has none. */
  postgresUsPerRequest: number | null
  credentialBytes: number
  /** Server-side state per live session: in the server's heap (memory), Redis or PostgreSQL; 0 for none. */
  bytesPerSession: number
}

export interface MeasuredReport {
  modes: MeasuredMode[]
  /** Where and when: the JSON's own words on the machine and the run. */
  source: { machineCores: number | null, loadAverageAtStart: number | null, startedAt: string | null, runs: number | null, target: string | null, storeLatencyMs: number | null }
  /** redis mode's bytes per session from the same run's measurement (sessionCosts.redis), when it ran. */
  redisBytesPerSession: number | null
}

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The modes whose servers keep no state per session (0 B), whatever the JSON says of them. */
const STATELESS = new Set(['jwt', 'jwt-eddsa', 'jwt-revocation', 'cookie'])

function storeOfMode (mode: string): StoreKind {
  if (mode.startsWith('postgres')) return 'postgres'
  if (mode === 'redis' || mode === 'jwt-revocation') return 'redis'
  return null
}

/**
 * The figures of a parsed compare JSON (`npm run compare -- --json FILE`), checked: every number a
 * plan needs there, finite and not negative. Throws ScaleInputError naming the file, the mode and
 * the field otherwise, and says what to run when the file is another kind of report.
 */
export function readCompareReport (data: unknown, file: string): MeasuredReport {
  const bad = (why: string): never => { throw new ScaleInputError(`${file}: ${why}`) }
  if (!isObject(data) || !isObject(data.config) || !Array.isArray(data.results)) {
    return bad('not a compare report (no config and results): write one with npm run compare -- --json FILE')
  }
  if ('sloP99Ms' in data.config) {
    return bad('a capacity report (npm run compare -- --slo-p99-ms): it has no state per session, no credential size and no store round trips per request. ' +
      'Plan from the closed-loop comparison: npm run compare -- --json FILE')
  }
  if (data.results.length === 0) bad('no results: the report measured no mode')

  const modes = data.results.map((raw, i): MeasuredMode => {
    if (!isObject(raw) || typeof raw.mode !== 'string') return bad(`results[${i}] is not a mode's result`)
    const name = raw.mode
    const mode = baseMode(name)
    const number = (value: unknown, field: string, what: string): number => {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return bad(`${name} has no ${field} (${what})${value === null ? ': null, not measured in this run' : ''}`)
      }
      if (value < 0) return bad(`${name}'s ${field} is ${value}: ${what} cannot be negative`)
      return value
    }
    const optional = (value: unknown, field: string, what: string): number | null =>
      value === undefined || value === null ? null : number(value, field, what)
    const cost = isObject(raw.memoryCost) ? raw.memoryCost : bad(`${name} has no memoryCost (the credential's size and the state per session)`)
    const balancer = raw.balancerCpuUsPerRequest
    if (balancer === null) bad(`${name} has no balancer CPU per request: the run measured a cluster at --url, whose processes it cannot see. Plan from a local run`)
    const cache = isObject(raw.sessionCache) ? raw.sessionCache : null
    return {
      name,
      mode,
      rps: number(raw.rps, 'rps', 'req/s'),
      serverUsPerRequest: number(raw.cpuUsPerRequest, 'cpuUsPerRequest', 'the app servers\' CPU per request'),
      balancerUsPerRequest: number(balancer, 'balancerCpuUsPerRequest', 'the balancer\'s CPU per request'),
      storeTripsPerRequest: number(raw.storeCommandsPerRequest, 'storeCommandsPerRequest', 'store round trips per request'),
      store: storeOfMode(mode),
      cacheCommandsPerRequest: cache === null ? 0 : number(cache.cacheCommandsPerRequest, 'sessionCache.cacheCommandsPerRequest', 'commands to the shared cache per request'),
      redisUsPerRequest: optional(raw.redisCpuUsPerRequest, 'redisCpuUsPerRequest', 'Redis CPU per request'),
      postgresUsPerRequest: optional(raw.postgresCpuUsPerRequest, 'postgresCpuUsPerRequest', 'PostgreSQL CPU per request'),
      credentialBytes: number(cost.credentialBytes, 'memoryCost.credentialBytes', 'the credential\'s size'),
      bytesPerSession: STATELESS.has(mode) ? 0 : number(cost.bytesPerSession, 'memoryCost.bytesPerSession', 'the state per session; compare measures it unless --sessions 0')
    }
  })

  const config = data.config
  const machine = isObject(config.machine) ? config.machine : {}
  const numberOrNull = (v: unknown): number | null => typeof v === 'number' && Number.isFinite(v) ? v : null
  const costs = isObject(data.sessionCosts) && isObject(data.sessionCosts.redis) ? data.sessionCosts.redis : null
  const redisBytes = costs === null ? null : numberOrNull(costs.bytesPerSession)
  return {
    modes,
    source: {
      machineCores: numberOrNull(machine.cores),
      loadAverageAtStart: numberOrNull(machine.loadAverageAtStart),
      startedAt: typeof config.startedAt === 'string' ? config.startedAt : null,
      runs: numberOrNull(config.runs),
      target: typeof config.target === 'string' ? config.target : null,
      storeLatencyMs: numberOrNull(config.storeLatencyMs)
    },
    redisBytesPerSession: redisBytes !== null && redisBytes > 0 ? redisBytes : null
  }
}
