import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
import { UsageError, withNegativeValues } from '../lib/cli.ts'
import { COMPARE_MODES, DEFAULT_COMPARE_MODES, type CompareMode } from './modes.ts'

export { UsageError }

export const USAGE = `Usage: npm run compare -- [options]

Load-tests each auth mode on a fresh cluster of its own (app servers behind the balancer)
and prints what each mode costs and how often it refuses a logged-in user.
  --modes LIST            which modes, comma-separated, of ${COMPARE_MODES.join(', ')} (default ${DEFAULT_COMPARE_MODES.join(',')};
                          jwt-revocation is jwt with JWT_REVOCATION=redis: logout works, one Redis lookup per request);
                          a mode named twice runs twice on clusters of its own (jwt and jwt#2): they should agree within the noise
  --servers N             app servers per cluster, 1 to 32 (default 3)
  --connections C         concurrent connections, each with its own session (default 50)
  --duration S            seconds of measured load per run (default 6)
  --warmup S              the most unmeasured load before each run, in seconds (default 8): the warm-up ends
                          sooner once the load is steady, i.e. the last two one-second windows are within 3%
                          of the two before in req/s and in CPU per request; 0 for none
  --wear-in N             before the first round, load each fresh cluster until every app server has answered
                          N requests (default 30000; at most 30 s; 0 for none): V8 compiles a server's hot code
                          after it has run so many times, so a slow machine needs longer to get there
  --runs R                repeat each mode R times, interleaved, in a rotating order; report the mean with a 95%
                          interval and which differences between modes are larger than the noise (default 1)
  --sessions N            sessions created to measure memory per session; 0 skips it (default 100000)
  --store-latency-ms N    put a delay proxy adding N ms per round trip between the servers and each store they ask
                          on a request (Redis, PostgreSQL; the Redis cache too): a store one network hop away
                          (--redis-latency-ms N: the same, its older name)
  --sweep servers=A..B    rerun for every cluster size from A to B (or a list: servers=1,2,4)
  --url URL               measure the cluster already running there instead of starting one
  --slo-p99-ms MS         instead of the closed-loop comparison: each mode's capacity at that p99, in an open model
                          (requests on a schedule, latency from when each was due): the offered rate climbs from
                          --start-rps (default 500) by x2 to at most --max-rps (default 64000), each step held for
                          --step-seconds (default 1.5) after a short warm-up, until one breaks the target; then
                          bisects around the knee. Uses --modes, --servers, --connections, --store-latency-ms, --url
  --json FILE             write the results as JSON (the shape in CONTRACT.md)
  --html FILE             write a self-contained HTML report with charts
  --from FILE             measure nothing: print (and --html) the results a --json run wrote
  --verbose               show the servers' log lines`

export interface CompareOptions {
  modes: CompareMode[]
  servers: number
  connections: number
  durationSeconds: number
  warmupSeconds: number
  /** --wear-in: requests per app server before a cluster's first round (steady-state.ts, wearIn); 0: none. */
  wearInPerServer: number
  runs: number
  sessions: number
  /** --store-latency-ms (or its older name --redis-latency-ms). */
  storeLatencyMs: number
  /** Cluster sizes to sweep; null when not sweeping. */
  sweep: number[] | null
  url: string | null
  /** --slo-p99-ms: measure capacity at this p99 (capacity.ts) instead of the closed-loop comparison; null: do not. */
  sloP99Ms: number | null
  startRps: number
  maxRps: number
  stepSeconds: number
  json: string | null
  html: string | null
  /** Re-render a saved --json report instead of measuring. */
  from: string | null
  verbose: boolean
  help: boolean
}

function wholeNumber (flag: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value)
  if (value === undefined || value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got "${String(value)}")`)
  }
  return n
}

function seconds (flag: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value)
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${flag} must be a number of seconds from ${min} to ${max} (got "${String(value)}")`)
  }
  return n
}

function positive (flag: string, value: string, max: number, unit: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > max) {
    throw new UsageError(`--${flag} must be a number of ${unit} above 0 and at most ${max} (got "${value}")`)
  }
  return n
}

/** `servers=1..6` or `servers=1,3,5` to the sorted, distinct cluster sizes. */
export function parseSweep (value: string): number[] {
  const match = /^servers=(.+)$/.exec(value.trim())
  if (match === null) throw new UsageError(`--sweep takes servers=A..B or servers=A,B,C (got "${value}")`)
  const spec = match[1] as string
  let sizes: number[]
  const range = /^(\d+)\.\.(\d+)$/.exec(spec)
  if (range !== null) {
    const from = Number(range[1])
    const to = Number(range[2])
    if (from > to) throw new UsageError(`--sweep servers=${spec}: the range runs backwards`)
    sizes = Array.from({ length: to - from + 1 }, (_, i) => from + i)
  } else {
    sizes = spec.split(',').map((s) => Number(s))
  }
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 32)) throw new UsageError(`--sweep sizes must be whole numbers from 1 to 32 (got "${spec}")`)
  return [...new Set(sizes)].sort((a, b) => a - b)
}

const OPTIONS = {
  modes: { type: 'string', default: DEFAULT_COMPARE_MODES.join(',') },
  servers: { type: 'string', default: '3' },
  connections: { type: 'string', default: '50' },
  // Six modes in under two minutes on a 2-core machine (docs/compare.md says why these two).
  duration: { type: 'string', default: '6' },
  warmup: { type: 'string', default: '8' },
  'wear-in': { type: 'string', default: '30000' },
  runs: { type: 'string', default: '1' },
  sessions: { type: 'string', default: '100000' },
  'store-latency-ms': { type: 'string' },
  'redis-latency-ms': { type: 'string' },
  sweep: { type: 'string' },
  url: { type: 'string' },
  'slo-p99-ms': { type: 'string' },
  'start-rps': { type: 'string', default: '500' },
  'max-rps': { type: 'string', default: '64000' },
  'step-seconds': { type: 'string', default: '1.5' },
  json: { type: 'string' },
  html: { type: 'string' },
  from: { type: 'string' },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false }
} as const satisfies ParseArgsOptionsConfig

export function parseCompareArgs (argv: string[]): CompareOptions {
  let values
  try {
    values = parseArgs({
      args: withNegativeValues(argv, OPTIONS),
      options: OPTIONS,
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }

  const modes = values.modes.split(',').map((m) => m.trim()).filter((m) => m !== '')
  for (const m of modes) {
    if (!COMPARE_MODES.includes(m as CompareMode)) throw new UsageError(`--modes takes ${COMPARE_MODES.join(', ')} (got "${m}")`)
  }
  if (modes.length === 0) throw new UsageError('--modes needs at least one mode')

  const latencyFlag = values['store-latency-ms'] !== undefined ? 'store-latency-ms' : 'redis-latency-ms'
  if (values['store-latency-ms'] !== undefined && values['redis-latency-ms'] !== undefined) throw new UsageError('--redis-latency-ms is the older name of --store-latency-ms: give one of them')
  const options: CompareOptions = {
    // Duplicates stay: a mode named twice is measured twice (mode-names.ts).
    modes: modes as CompareMode[],
    servers: wholeNumber('servers', values.servers, 1, 32),
    connections: wholeNumber('connections', values.connections, 1, 1000),
    durationSeconds: seconds('duration', values.duration, 0.5, 600),
    warmupSeconds: seconds('warmup', values.warmup, 0, 60),
    wearInPerServer: wholeNumber('wear-in', values['wear-in'], 0, 1_000_000),
    runs: wholeNumber('runs', values.runs, 1, 20),
    sessions: wholeNumber('sessions', values.sessions, 0, 2_000_000),
    storeLatencyMs: wholeNumber(latencyFlag, values[latencyFlag] ?? '0', 0, 1000),
    sweep: values.sweep === undefined ? null : parseSweep(values.sweep),
    url: values.url ?? null,
    sloP99Ms: values['slo-p99-ms'] === undefined ? null : positive('slo-p99-ms', values['slo-p99-ms'], 60_000, 'milliseconds'),
    startRps: wholeNumber('start-rps', values['start-rps'], 1, 1_000_000),
    maxRps: wholeNumber('max-rps', values['max-rps'], 1, 1_000_000),
    stepSeconds: seconds('step-seconds', values['step-seconds'], 0.2, 60),
    json: values.json ?? null,
    html: values.html ?? null,
    from: values.from ?? null,
    verbose: values.verbose,
    help: values.help
  }

  if (options.sloP99Ms !== null) {
    if (options.sweep !== null) throw new UsageError('--slo-p99-ms measures one cluster size: it cannot be used with --sweep')
    if (options.runs > 1) throw new UsageError('--slo-p99-ms searches each mode once: it cannot be used with --runs')
    if (options.from !== null) throw new UsageError('--from re-renders a saved report, whichever kind it is: leave out --slo-p99-ms')
    if (options.startRps > options.maxRps) throw new UsageError(`--start-rps (${options.startRps}) is above --max-rps (${options.maxRps})`)
  }
  if (options.url !== null) {
    let parsed: URL
    try {
      parsed = new URL(options.url)
    } catch {
      throw new UsageError(`--url must be a URL such as http://127.0.0.1:8080 (got "${options.url}")`)
    }
    if (parsed.protocol !== 'http:') throw new UsageError(`--url must be an http:// URL (got "${options.url}")`)
    if (options.sweep !== null) throw new UsageError('--sweep starts clusters of each size: it cannot be used with --url')
    if (options.storeLatencyMs > 0) throw new UsageError(`--${latencyFlag} puts a proxy in front of the stores this command starts: it cannot be used with --url`)
  }
  return options
}
