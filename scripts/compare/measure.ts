import { cpus } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEMO_USERS } from '../../services/users.ts'
import { decodeJwt } from '../demo/jwt.ts'
import type { LoadGenerator } from './load-client.ts'
import type { GroupLoad, LoadJob, LoadResult, Tick } from './load-generator.ts'
import { machineTimes, processCpuSeconds } from './process-cpu.ts'
import { difference, type ServerCounters } from './prometheus.ts'
import { meanInterval, type Interval } from './stats.ts'
import { fullWindows, warmUp, wearIn, windowRecorder, WEAR_IN_CAP_SECONDS, type LoadWindow, type Warmup, type WearIn } from './steady-state.ts'
import type { Target } from './target.ts'

export interface RunSettings {
  connections: number
  durationSeconds: number
  /** The most a warm-up may take; it ends sooner once the load is steady (steady-state.ts). 0: none. */
  warmupSeconds: number
}

/** Where a run stood: what it followed, and how worn in the cluster's processes were. */
export interface RunContext {
  warmup: Warmup
  /** The measured load, one-second window by window. */
  windows: LoadWindow[]
  /** Requests the cluster's app servers had answered before the measured load (logins, warm-ups, earlier rounds); null when not counted. */
  servedBefore: number | null
  /** Which round (1 to --runs), and which place in it (1 = the first mode measured in that round). */
  round: number
  order: number
}

/** What one server did during one measured run, from its own /metrics. */
export interface ServerRun {
  ok: number
  unauthorized: number
  unavailable: number
  /** Mean time of the auth step, µs (auth_duration_seconds sum / count). */
  authUsPerRequest: number
  /** session_store_commands_total per authenticated request. */
  storeCommandsPerRequest: number
  /** process_cpu_seconds_total per request this server answered, µs: the whole request, not only auth. */
  cpuUsPerRequest: number
  /** CPU seconds per second of load: 1 is one core, flat out. */
  cpuCores: number
}

export interface Bottleneck {
  /** The balancer's CPU seconds per second of load; null when its process cannot be seen. */
  balancerCores: number | null
  /** All app servers' together. */
  serverCores: number
  loadGeneratorCores: number
  /** Every core of the machine, busy fraction; includes work that is not ours. */
  machineBusy: number
  /** Cores busy with processes that are not part of this run (other users, other tests). */
  otherCores: number
  balancerIsBottleneck: boolean
  loadGeneratorIsBottleneck: boolean
  /** Plain words, empty when nothing is wrong. */
  warnings: string[]
}

/** One measured run of one mode. */
export interface RunResult {
  mode: string
  servers: number
  connections: number
  durationSeconds: number
  requests: number
  rps: number
  latencyMs: { p50: number, p90: number, p99: number, mean: number, max: number }
  ok: number
  unauthorized: number
  /** No response, or a status that is neither 2xx nor 401. */
  errors: number
  /** Statuses other than 2xx and 401, by status. */
  otherStatus: Record<string, number>
  /** unauthorized / (ok + unauthorized): the share of authenticated requests refused. */
  authFailureRate: number
  perServer: Record<string, ServerRun>
  /** The servers' own counts, added up. They can exceed the client's by the requests in flight when the load stopped. */
  serverCounted: { ok: number, unauthorized: number, unavailable: number }
  /** Mean auth step over every server, µs. */
  authUsPerRequest: number
  /** The same step, from each response's Server-Timing header (p50 and p99 too). */
  serverTimingAuthUs: { mean: number, p50: number, p99: number } | null
  /** session_store_commands_total per request the servers answered: Redis commands, or PostgreSQL statements (with a cache, the reads it missed plus its renewals and pings). */
  storeCommandsPerRequest: number
  /** postgres with a session cache: the share of reads the cache answered, and commands to a shared cache per request; null without a cache. */
  sessionCache: { lookups: number, hitRatio: number, cacheCommandsPerRequest: number } | null
  /** All servers' CPU time / requests they answered, µs. */
  cpuUsPerRequest: number
  /** The balancer's CPU time / requests, µs; null when not visible. */
  balancerCpuUsPerRequest: number | null
  /** The load generator's CPU time / requests, µs. */
  loadGeneratorCpuUsPerRequest: number
  /**
   * The run's own stores' CPU time / requests the servers answered, µs: Redis (one thread does
   * every command: its ceiling), PostgreSQL (the postmaster and its backends); null where the run
   * has no such store or its process cannot be seen (--url). Absent from reports saved before it.
   */
  redisCpuUsPerRequest?: number | null
  postgresCpuUsPerRequest?: number | null
  bottleneck: Bottleneck
  /** JWTs: the connections grouped by the kid their token was signed with; null for session ids. */
  byKid: Record<string, KidRun> | null
  warmup: Warmup
  windows: LoadWindow[]
  /** req/s over the run's full one-second windows, with a 95% interval: windows of one run are correlated, so it understates the noise between runs. */
  rpsWithinRun: Interval
  servedBefore: number | null
  round: number
  order: number
}

/** The connections whose tokens one key (kid) signed, during one run. */
export interface KidRun {
  connections: number
  /** Responses as the client saw them: 2xx, 401, and anything else. */
  ok: number
  unauthorized: number
  other: number
  /** The auth step on the servers, from these responses' Server-Timing, µs. */
  authUs: { count: number, mean: number, p50: number, p99: number } | null
}

/** The kid in each token's header, when every token is a JWT that names one; else undefined. */
export function kidsOf (tokens: string[]): string[] | undefined {
  const kids = tokens.map((token) => {
    try {
      const { kid } = decodeJwt(token).header
      return typeof kid === 'string' ? kid : undefined
    } catch {
      return undefined // a session id, not a JWT
    }
  })
  return kids.every((kid) => kid !== undefined) ? kids : undefined
}

export type Progress = (event: { phase: 'login' | 'wear-in' | 'warmup' | 'load', done: number, total: number, rps?: number }) => void

const USERS = Object.entries(DEMO_USERS)
const SETTLE_MS = 250

/** CPU seconds the run's own stores used during the measured load; a store left out has none or could not be seen. */
export interface StoreCpuSeconds { redis?: number, postgres?: number }

function storeCpuReader (target: Target): () => { redis: number | undefined, postgres: number | undefined } {
  return () => ({ redis: target.redisCpuSeconds?.(), postgres: target.postgresCpuSeconds?.() })
}

function storeCpuBetween (before: { redis: number | undefined, postgres: number | undefined }, after: { redis: number | undefined, postgres: number | undefined }): StoreCpuSeconds {
  const out: StoreCpuSeconds = {}
  if (before.redis !== undefined && after.redis !== undefined) out.redis = after.redis - before.redis
  if (before.postgres !== undefined && after.postgres !== undefined) out.postgres = after.postgres - before.postgres
  return out
}

/** Logs in `count` sessions through the balancer, a few at a time: each login is a deliberately slow scrypt. servedBy: counts the answers by the process that gave them. */
export async function loginSessions (url: string, count: number, onProgress: Progress = () => {}, servedBy: Record<string, number> = {}): Promise<string[]> {
  const tokens: string[] = new Array<string>(count)
  let next = 0
  let done = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      const [username, password] = USERS[i % USERS.length] as [string, string]
      const res = await fetch(`${url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password }),
        signal: AbortSignal.timeout(15_000)
      })
      const body = await res.text()
      if (res.status !== 200) throw new Error(`login ${i + 1} of ${count} failed: ${res.status} ${body.slice(0, 200)}`)
      const answer = JSON.parse(body) as { token: string, servedBy?: string }
      tokens[i] = answer.token
      const by = answer.servedBy ?? 'unknown'
      servedBy[by] = (servedBy[by] ?? 0) + 1
      onProgress({ phase: 'login', done: ++done, total: count })
    }
  }
  await Promise.all(Array.from({ length: Math.min(4, count) }, worker))
  return tokens
}

/** The CPU seconds of every process of ours that serves or makes the load; undefined when one cannot be seen (--url). */
function ourCpuSeconds (target: Target, loadGenerator: LoadGenerator): () => number | undefined {
  return () => {
    const parts = [target.balancerCpuSeconds(), target.serverCpuSeconds(), processCpuSeconds(loadGenerator.pid)]
    return parts.every((p) => p !== undefined) ? (parts as number[]).reduce((a, b) => a + b, 0) : undefined
  }
}

/** The load every run of a cluster makes: /feeds, one token per connection, grouped by key where they are JWTs. */
function loadJob (target: Target, tokens: string[], connections: number): Omit<LoadJob, 'durationSeconds'> {
  const groups = kidsOf(tokens)
  return { url: target.url, path: '/feeds', tokens, connections, ...(groups === undefined ? {} : { groups }) }
}

/** Before a cluster's first round: its app servers answer `perServer` requests each, or the cap ends it (steady-state.ts, wearIn). */
export async function wearInCluster (target: Target, tokens: string[], settings: { connections: number, wearInPerServer: number }, loadGenerator: LoadGenerator, onProgress: Progress = () => {}): Promise<WearIn> {
  const requests = settings.wearInPerServer * target.serverCount
  return await wearIn(loadJob(target, tokens, settings.connections), requests, WEAR_IN_CAP_SECONDS, loadGenerator, ourCpuSeconds(target, loadGenerator),
    (w, answered) => onProgress({ phase: 'wear-in', done: answered, total: requests, rps: w.rps }))
}

/**
 * One measured run: a warm-up until steady (not counted), then the servers' counters, the
 * balancer's CPU and the machine's CPU before and after the measured load, and the load window by
 * window. Tokens: one per connection.
 */
export async function measureRun (target: Target, tokens: string[], settings: RunSettings, loadGenerator: LoadGenerator, onProgress: Progress = () => {}, at: { round: number, order: number } = { round: 1, order: 1 }): Promise<RunResult> {
  const job = loadJob(target, tokens, settings.connections)
  const cpuSeconds = ourCpuSeconds(target, loadGenerator)
  const warmup = await warmUp(job, settings.warmupSeconds, loadGenerator, cpuSeconds,
    (w, elapsed) => onProgress({ phase: 'warmup', done: Math.round(elapsed), total: settings.warmupSeconds, rps: w.rps }))
  // Requests the warm-up left in flight still reach the servers' counters: let them land first.
  if (warmup.seconds > 0) await sleep(SETTLE_MS)
  const before = await target.scrape()
  const readStores = storeCpuReader(target)
  const storesBefore = readStores()
  const balancerBefore = target.balancerCpuSeconds()
  const machineBefore = machineTimes()
  const windows: LoadWindow[] = []
  const record = windowRecorder(cpuSeconds)
  const load: LoadResult = await loadGenerator.run({ ...job, durationSeconds: settings.durationSeconds }, (t: Tick) => {
    windows.push(record(t))
    onProgress({ phase: 'load', done: Math.min(t.second, settings.durationSeconds), total: settings.durationSeconds, rps: t.requests / Math.max(t.seconds, 1e-3) })
  })
  const machineAfter = machineTimes()
  const balancerAfter = target.balancerCpuSeconds()
  const storesAfter = readStores()
  const after = await target.scrape()
  const servedBefore = [...before.values()].reduce((n, c) => n + c.ok + c.unauthorized + c.unavailable, 0)
  return summarizeRun(target, settings, load, before, after,
    balancerBefore !== undefined && balancerAfter !== undefined ? balancerAfter - balancerBefore : undefined,
    (machineAfter.busy - machineBefore.busy) / Math.max(1, machineAfter.total - machineBefore.total),
    { warmup, windows, servedBefore, ...at }, storeCpuBetween(storesBefore, storesAfter))
}

const NO_CONTEXT: RunContext = { warmup: { seconds: 0, capSeconds: 0, steady: false, windows: [] }, windows: [], servedBefore: null, round: 1, order: 1 }

/** Turns raw measurements into a run's numbers; kept apart from measureRun so it can be checked on made-up inputs. */
export function summarizeRun (
  target: Pick<Target, 'mode' | 'serverCount'>,
  settings: RunSettings,
  load: LoadResult,
  before: Map<string, ServerCounters>,
  after: Map<string, ServerCounters>,
  balancerCpuSeconds: number | undefined,
  machineBusy: number,
  context: RunContext = NO_CONTEXT,
  storeCpu: StoreCpuSeconds = {}
): RunResult {
  const seconds = load.durationSeconds > 0 ? load.durationSeconds : settings.durationSeconds
  const ok = Object.entries(load.statusCounts).filter(([s]) => s.startsWith('2')).reduce((n, [, c]) => n + c, 0)
  const unauthorized = load.statusCounts['401'] ?? 0
  const otherStatus = Object.fromEntries(Object.entries(load.statusCounts).filter(([s]) => !s.startsWith('2') && s !== '401'))
  const otherCount = Object.values(otherStatus).reduce((n, c) => n + c, 0)

  const perServer: Record<string, ServerRun> = {}
  const totals = { ok: 0, unauthorized: 0, unavailable: 0, authSeconds: 0, authCount: 0, storeCommands: 0, cacheLookups: 0, cacheHits: 0, cacheCommands: 0, cpuSeconds: 0 }
  for (const [id, counters] of [...after.entries()].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) {
    const d = difference(counters, before.get(id))
    const answered = d.ok + d.unauthorized + d.unavailable
    perServer[id] = {
      ok: d.ok,
      unauthorized: d.unauthorized,
      unavailable: d.unavailable,
      authUsPerRequest: d.authCount > 0 ? d.authSeconds / d.authCount * 1e6 : 0,
      storeCommandsPerRequest: answered > 0 ? d.storeCommands / answered : 0,
      cpuUsPerRequest: answered > 0 ? d.cpuSeconds / answered * 1e6 : 0,
      cpuCores: d.cpuSeconds / seconds
    }
    totals.ok += d.ok
    totals.unauthorized += d.unauthorized
    totals.unavailable += d.unavailable
    totals.authSeconds += d.authSeconds
    totals.authCount += d.authCount
    totals.storeCommands += d.storeCommands
    totals.cacheLookups += d.cacheLookups
    totals.cacheHits += d.cacheHits
    totals.cacheCommands += d.cacheCommands
    totals.cpuSeconds += d.cpuSeconds
  }
  const serverAnswered = totals.ok + totals.unauthorized + totals.unavailable
  const serverCores = totals.cpuSeconds / seconds
  const loadGeneratorCores = load.cpuSeconds / seconds
  const balancerCores = balancerCpuSeconds === undefined ? null : balancerCpuSeconds / seconds
  const cores = cpus().length
  const ours = serverCores + loadGeneratorCores + (balancerCores ?? 0)
  const otherCores = Math.max(0, machineBusy * cores - ours)

  return {
    mode: target.mode,
    servers: target.serverCount,
    connections: settings.connections,
    durationSeconds: seconds,
    requests: load.requests,
    rps: load.requests / seconds,
    latencyMs: load.latencyMs,
    ok,
    unauthorized,
    errors: load.errors + otherCount,
    otherStatus,
    authFailureRate: ok + unauthorized > 0 ? unauthorized / (ok + unauthorized) : 0,
    perServer,
    serverCounted: { ok: totals.ok, unauthorized: totals.unauthorized, unavailable: totals.unavailable },
    authUsPerRequest: totals.authCount > 0 ? totals.authSeconds / totals.authCount * 1e6 : 0,
    serverTimingAuthUs: load.serverTimingAuthMs === null
      ? null
      : { mean: load.serverTimingAuthMs.mean * 1000, p50: load.serverTimingAuthMs.p50 * 1000, p99: load.serverTimingAuthMs.p99 * 1000 },
    storeCommandsPerRequest: serverAnswered > 0 ? totals.storeCommands / serverAnswered : 0,
    sessionCache: totals.cacheLookups === 0
      ? null
      : { lookups: totals.cacheLookups, hitRatio: totals.cacheHits / totals.cacheLookups, cacheCommandsPerRequest: serverAnswered > 0 ? totals.cacheCommands / serverAnswered : 0 },
    cpuUsPerRequest: serverAnswered > 0 ? totals.cpuSeconds / serverAnswered * 1e6 : 0,
    balancerCpuUsPerRequest: balancerCpuSeconds === undefined || load.requests === 0 ? null : balancerCpuSeconds / load.requests * 1e6,
    loadGeneratorCpuUsPerRequest: load.requests === 0 ? 0 : load.cpuSeconds / load.requests * 1e6,
    // Per request the servers answered, as the store trips are: every one of them asked the store.
    redisCpuUsPerRequest: storeCpu.redis === undefined || serverAnswered === 0 ? null : storeCpu.redis / serverAnswered * 1e6,
    postgresCpuUsPerRequest: storeCpu.postgres === undefined || serverAnswered === 0 ? null : storeCpu.postgres / serverAnswered * 1e6,
    bottleneck: judgeBottleneck({ balancerCores, serverCores, loadGeneratorCores, machineBusy, otherCores, cores, servers: target.serverCount }),
    byKid: load.byGroup === null ? null : Object.fromEntries(Object.entries(load.byGroup).map(([kid, g]) => [kid, kidRun(g)])),
    ...context,
    rpsWithinRun: meanInterval(fullWindows(context.windows).map((w) => w.rps))
  }
}

function kidRun (g: GroupLoad): KidRun {
  const count = (match: (status: string) => boolean): number => Object.entries(g.statusCounts).filter(([s]) => match(s)).reduce((n, [, c]) => n + c, 0)
  const t = g.serverTimingAuthMs
  return {
    connections: g.connections,
    ok: count((s) => s.startsWith('2')),
    unauthorized: count((s) => s === '401'),
    other: count((s) => !s.startsWith('2') && s !== '401'),
    authUs: t === null ? null : { count: t.count, mean: t.mean * 1000, p50: t.p50 * 1000, p99: t.p99 * 1000 }
  }
}

// A Node process does its JavaScript on one thread: near one core of CPU, it can go no faster.
const SATURATED_CORES = 0.85

/**
 * Is the balancer, rather than the app servers, what sets the pace? Two signs, either enough:
 * its one thread is nearly full, or it burned more CPU than every app server together (so
 * the servers wait on it). Then req/s and latency describe the balancer more than the modes.
 */
export function judgeBottleneck (m: { balancerCores: number | null, serverCores: number, loadGeneratorCores: number, machineBusy: number, otherCores: number, cores: number, servers: number }): Bottleneck {
  const warnings: string[] = []
  const b = m.balancerCores
  const balancerIsBottleneck = b !== null && (b >= SATURATED_CORES || b >= m.serverCores)
  if (b === null) {
    warnings.push('the balancer\'s CPU cannot be seen from here (--url), so whether it limits throughput is unknown')
  } else if (balancerIsBottleneck) {
    warnings.push(b >= SATURATED_CORES
      ? `the balancer is the bottleneck: it used ${b.toFixed(2)} of a core, its one thread nearly full (the ${m.servers} app server${m.servers === 1 ? '' : 's'} used ${m.serverCores.toFixed(2)} together)`
      : `the balancer is the bottleneck: it used more CPU (${b.toFixed(2)} cores) than ${m.servers === 1 ? 'the app server' : `all ${m.servers} app servers together`} (${m.serverCores.toFixed(2)})`)
  }
  const loadGeneratorIsBottleneck = m.loadGeneratorCores >= SATURATED_CORES
  if (loadGeneratorIsBottleneck) warnings.push(`the load generator used ${m.loadGeneratorCores.toFixed(2)} of a core: it may be limiting req/s too`)
  if (m.machineBusy >= 0.9) {
    warnings.push(`the machine's ${m.cores} cores were ${Math.round(m.machineBusy * 100)}% busy${m.otherCores >= 0.25 ? `, ${m.otherCores.toFixed(1)} of them with work that is not this run's` : ''}: req/s is capped by the machine`)
  }
  return {
    balancerCores: b,
    serverCores: m.serverCores,
    loadGeneratorCores: m.loadGeneratorCores,
    machineBusy: m.machineBusy,
    otherCores: m.otherCores,
    balancerIsBottleneck,
    loadGeneratorIsBottleneck,
    warnings
  }
}
