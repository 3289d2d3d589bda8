import { cpus, loadavg } from 'node:os'
import type { LogSink } from '../lib/managed-process.ts'
import { startLoadGenerator } from './load-client.ts'
import { loginSessions, measureRun, wearInCluster, type Progress, type RunResult } from './measure.ts'
import type { CompareOptions } from './options.ts'
import { measureCostsOfModes, memoryCostOf, type MemoryCost, type SessionCosts } from './session-costs.ts'
import type { CompareMode } from './modes.ts'
import { measureRefreshCost, type RefreshCost } from './refresh-cost.ts'
import type { Spread } from './stats.ts'
import { combineRuns, type Confidence, type Trend } from './combine-runs.ts'
import { differences, type Difference } from './significance.ts'
import { runNames } from './mode-names.ts'
import { STEADY_RULE_TEXT, WEAR_IN_CAP_SECONDS, type WearIn } from './steady-state.ts'
import { balancerThreadsNote, connectToTarget, startLocalTarget, type Target } from './target.ts'

export type { MemoryCost } from './session-costs.ts'

/** One mode's entry in `results`: the contract's fields first, then the rest. */
export interface ModeResult extends RunResult {
  /** What a round-robin balancer predicts: (N-1)/N for memory, 0 for the shared-state modes. */
  expectedAuthFailureRate: number
  runs: number
  /** Across the runs: the median and the range. (The top-level rps, latency and costs are the means; the counts are the median-rps run's.) */
  spread: { rps: Spread, p50: Spread, p90: Spread, p99: Spread, authUsPerRequest: Spread, cpuUsPerRequest: Spread }
  /** Across the runs: each figure's mean with its 95% interval (Student's t); no interval with one run. */
  confidence: Confidence
  /** How req/s, the auth step's median and the servers' CPU per request moved from round to round. */
  trend: Trend
  memoryCost: MemoryCost
  /** Every run, in the order they ran. */
  allRuns: RunResult[]
  /** The load before the first round (--wear-in); null when there was none. (Absent from reports saved before it.) */
  wearIn?: WearIn | null
  /** jwt mode on a local cluster: the two keys the servers held, and the rotation between the logins; null otherwise. */
  keyRotation: KeyRotationDone | null
  /** Which process answered the logins (the `servedBy` of each): app servers, or in jwt-eddsa the issuer. (Absent from reports saved before it.) */
  loginsServedBy?: Record<string, number>
  /** jwt-eddsa on a local cluster: what a refresh costs the issuer, from a short burst after the runs; null otherwise. */
  refresh?: RefreshCost | null
}

/**
 * The jwt clusters start with JWT_SECRETS=old,new; half the sessions log in (signed with "old"),
 * every server restarts with JWT_SECRETS=new,old, and the other half log in (signed with "new").
 * Each connection then holds a token from one of the two keys: byKid in the runs tells them apart.
 */
export interface KeyRotationDone {
  /** As the servers list them during the measured runs: the first signs, both are accepted. */
  kids: { newer: string, older: string }
  /** How long restarting every server with the new list took, until the balancer had them back. */
  restartSeconds: number
  sessions: { older: number, newer: number }
}

export interface SweepPoint {
  servers: number
  mode: string
  rps: number
  latencyMs: { p50: number, p90: number, p99: number }
  authFailureRate: number
  expectedAuthFailureRate: number
  authUsPerRequest: number
  cpuUsPerRequest: number
  balancerIsBottleneck: boolean
}

export interface CompareReport {
  config: {
    servers: number
    connections: number
    durationSeconds: number
    warmupSeconds: number
    /** --wear-in: requests per app server before each cluster's first round, at most wearInCapSeconds; 0: none. (Absent from reports saved before it.) */
    wearInPerServer?: number
    wearInCapSeconds?: number
    runs: number
    modes: string[]
    /** --store-latency-ms: added to every round trip to Redis and PostgreSQL. */
    storeLatencyMs: number
    /** The same number, under the name it had when only Redis was delayed. */
    redisLatencyMs: number
    sessionsMeasured: number
    url: string | null
    sweep: number[] | null
    target: string
    machine: { cores: number, loadAverageAtStart: number }
    /** How each warm-up decided it was done (warmupSeconds is its cap). */
    warmupRule: string
    startedAt: string
    elapsedSeconds: number
  }
  results: ModeResult[]
  sweep: SweepPoint[] | null
  sessionCosts: SessionCosts | null
  /** Each pair of modes, each figure: is the difference larger than the noise? (significance.ts) */
  differences: Difference[]
  /** Why something was not measured. */
  notes: string[]
}

export interface Reporter {
  /** A finished step: always printed. */
  step (text: string): void
  /** What is going on now: shown on a terminal, overwritten by the next status. */
  status (text: string): void
}

export { combineRuns, expectedFailureRate } from './combine-runs.ts'

function fmt (n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

/**
 * The whole comparison: session costs first (nothing else running), then for each cluster size a
 * fresh cluster per mode, logged-in sessions, and rounds of warm-up plus measured load, modes
 * interleaved so a noisy neighbour hits every mode alike. Everything started is stopped, always.
 */
export async function runCompare (options: CompareOptions, reporter: Reporter, onLog?: LogSink): Promise<CompareReport> {
  const started = performance.now()
  const startedAt = new Date().toISOString()
  const notes: string[] = []
  const sizes = options.sweep ?? [options.servers]

  // --url: one cluster, whatever mode it runs.
  let remote: Target | undefined
  if (options.url !== null) {
    remote = await connectToTarget(options.url)
    reporter.step(`Measuring ${remote.description}, in ${remote.mode} mode (from its /health).`)
  }
  const modes: CompareMode[] = remote !== undefined ? [remote.mode] : options.modes
  const named = runNames(modes)
  if (remote !== undefined && remote.mode.startsWith('jwt')) notes.push('key rotation not measured: the keys of a cluster this command did not start cannot be changed from here')

  // Memory per session is measured in a child of its own while the clusters start: it counts
  // bytes, not time, so the overlap costs it nothing, and no load test runs until both are done.
  const sessionCostsPending = measureCostsOfModes(options.sessions, modes, (text) => { reporter.step(text) }, notes, onLog)
  sessionCostsPending.catch(() => {})

  const loadGenerator = startLoadGenerator()
  const bySize = new Map<number, ModeResult[]>()
  const rotations = new Map<string, KeyRotationDone>()
  const logins = new Map<string, { servedBy: Record<string, number>, credentialBytes: number | null }>()
  const refreshes = new Map<string, RefreshCost>()
  const wearIns = new Map<string, WearIn>()
  let sessionCosts: SessionCosts | null | undefined
  try {
    for (const size of remote !== undefined ? [remote.serverCount] : sizes) {
      const targets: Array<{ name: string, target: Target, tokens: string[] }> = []
      try {
        // Every cluster starts at once: a start is mostly waiting (processes loading, a database's
        // initdb, readiness checks), and nothing is measured until all are up and logged in.
        if (remote === undefined) reporter.status(`starting ${named.length} cluster${named.length === 1 ? '' : 's'} of ${size} app server${size === 1 ? '' : 's'} and a balancer...`)
        const t0 = performance.now()
        const starting = await Promise.allSettled(named.map(async ({ mode, name }) => {
          if (remote !== undefined) return remote
          const target = await startLocalTarget({ mode, servers: size, storeLatencyMs: options.storeLatencyMs, onLog })
          reporter.step(`${name}: ${target.description}, up in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
          return target
        }))
        for (const [i, result] of starting.entries()) {
          if (result.status === 'fulfilled') targets.push({ name: (named[i] as { name: string }).name, target: result.value, tokens: [] })
        }
        const failed = starting.find((r) => r.status === 'rejected')
        if (failed !== undefined) throw failed.reason
        // The logins one cluster after another: each is a deliberately slow scrypt on the servers.
        for (const entry of targets) {
          const { tokens, rotation, servedBy } = await logIn(entry.name, entry.target, options.connections, reporter)
          entry.tokens = tokens
          if (rotation !== null) rotations.set(entry.name, rotation)
          logins.set(entry.name, { servedBy, credentialBytes: tokens.length === 0 ? null : tokens.reduce((n, token) => n + Buffer.byteLength(token), 0) / tokens.length })
        }
        sessionCosts ??= await sessionCostsPending
        for (const { name, target, tokens } of options.wearInPerServer > 0 ? targets : []) {
          const worn = await wearInCluster(target, tokens, options, loadGenerator, (e) => {
            reporter.status(`${name}: wearing in, ${fmt(e.done)}/${fmt(e.total)} requests${e.rps !== undefined ? `, ${fmt(e.rps)} req/s` : ''}`)
          })
          wearIns.set(name, worn)
          reporter.step(`${name}: worn in, ${fmt(worn.requests)} requests in ${worn.seconds.toFixed(1)} s${worn.reached ? '' : ` (stopped by the ${WEAR_IN_CAP_SECONDS} s cap, short of ${fmt(worn.target)})`}` +
            (worn.last === null ? '' : `; at the end ${fmt(worn.last.rps)} req/s${worn.last.cpuUsPerRequest === null ? '' : `, ${fmt(worn.last.cpuUsPerRequest)} µs of CPU per request`}`))
        }

        const runs = new Map<string, RunResult[]>()
        for (let round = 1; round <= options.runs; round++) {
          // Each round starts one mode further on (A B C, then B C A, then C A B): no mode is
          // always the first measured, or always the one measured after a given other.
          const shift = (round - 1) % targets.length
          const order = [...targets.slice(shift), ...targets.slice(0, shift)]
          for (const [place, { name, target, tokens }] of order.entries()) {
            const label = `${name}${options.runs > 1 ? ` run ${round}/${options.runs}` : ''}${sizes.length > 1 ? ` (${size} servers)` : ''}`
            const onProgress: Progress = (e) => {
              reporter.status(`${label}: ${e.phase === 'warmup' ? `warming up until steady, ${e.done} s (at most ${e.total})` : `measuring ${e.done}/${e.total} s`}${e.rps !== undefined ? `, ${fmt(e.rps)} req/s` : ''}`)
            }
            const measured = await measureRun(target, tokens, options, loadGenerator, onProgress, { round, order: place + 1 })
            const run: RunResult = { ...measured, mode: name }
            runs.set(name, [...(runs.get(name) ?? []), run])
            reporter.step(`${label}: ${fmt(run.rps)} req/s, p99 ${run.latencyMs.p99.toFixed(1)} ms, ${(run.authFailureRate * 100).toFixed(1)}% refused` +
              (run.bottleneck.balancerIsBottleneck ? ' (balancer-bound)' : '') + `; ${roundLine(run)}`)
          }
        }
        // After the load, so its logins and refreshes never share the machine with a measured run.
        for (const { name, target } of targets) {
          if (target.issuerCpuSeconds === undefined) continue
          reporter.status(`${name}: timing refreshes at the issuer...`)
          const cost = await measureRefreshCost(target)
          refreshes.set(name, cost)
          reporter.step(`${name}: ${fmt(cost.refreshes)} refreshes at the issuer in ${cost.seconds.toFixed(1)} s, ${cost.latencyMs.p50.toFixed(2)} ms each (p50)` +
            `${cost.issuerCpuUsPerRefresh === null ? '' : `, ${fmt(cost.issuerCpuUsPerRefresh)} µs of issuer CPU each`}${cost.failed > 0 ? `; ${cost.failed} failed` : ''}`)
        }
        bySize.set(size, named.map(({ mode, name }) => {
          const login = logins.get(name)
          return {
            ...combineRuns(runs.get(name) ?? [], memoryCostOf(mode, sessionCosts ?? null, login?.credentialBytes ?? null), rotations.get(name) ?? null),
            wearIn: wearIns.get(name) ?? null,
            loginsServedBy: login?.servedBy ?? {},
            refresh: refreshes.get(name) ?? null
          }
        }))
      } finally {
        if (remote === undefined) {
          reporter.status('stopping the clusters...')
          await Promise.all(targets.map(async ({ target }) => await target.stop()))
        }
      }
    }
  } finally {
    await loadGenerator.close()
    await sessionCostsPending.catch(() => null)
  }

  const lastSize = [...bySize.keys()].pop() as number
  const results = bySize.get(lastSize) ?? []
  const sweep = options.sweep === null
    ? null
    : [...bySize.entries()].flatMap(([servers, modeResults]) => modeResults.map((r): SweepPoint => ({
        servers,
        mode: r.mode,
        rps: r.rps,
        latencyMs: { p50: r.latencyMs.p50, p90: r.latencyMs.p90, p99: r.latencyMs.p99 },
        authFailureRate: r.authFailureRate,
        expectedAuthFailureRate: r.expectedAuthFailureRate,
        authUsPerRequest: r.authUsPerRequest,
        cpuUsPerRequest: r.cpuUsPerRequest,
        balancerIsBottleneck: r.bottleneck.balancerIsBottleneck
      })))

  return {
    config: {
      servers: results[0]?.servers ?? lastSize,
      connections: options.connections,
      durationSeconds: options.durationSeconds,
      warmupSeconds: options.warmupSeconds,
      wearInPerServer: options.wearInPerServer,
      wearInCapSeconds: WEAR_IN_CAP_SECONDS,
      runs: options.runs,
      modes: named.map((n) => n.name),
      storeLatencyMs: options.storeLatencyMs,
      redisLatencyMs: options.storeLatencyMs,
      sessionsMeasured: options.sessions,
      url: options.url,
      sweep: options.sweep,
      target: remote?.description ?? `a fresh local cluster per mode: ${lastSize} app server${lastSize === 1 ? '' : 's'} behind the balancer${balancerThreadsNote()}${options.storeLatencyMs > 0 ? `, every store (Redis, PostgreSQL) ${options.storeLatencyMs} ms away` : ''}`,
      machine: { cores: cpus().length, loadAverageAtStart: loadavg()[0] ?? 0 },
      warmupRule: options.warmupSeconds > 0 ? `until steady (${STEADY_RULE_TEXT}), at most ${options.warmupSeconds} s` : 'none',
      startedAt,
      elapsedSeconds: (performance.now() - started) / 1000
    },
    results,
    sweep,
    sessionCosts: sessionCosts ?? null,
    differences: differences(results),
    notes
  }
}

/** What a run's progress line says beside its rate: its warm-up, the CPU per request, the machine. */
function roundLine (run: RunResult): string {
  const w = run.warmup
  const warm = w.capSeconds <= 0 ? 'no warm-up' : `warm-up ${w.seconds.toFixed(1)} s${w.steady ? ' (steady)' : ' (not steady by the cap)'}`
  const b = run.bottleneck
  return `${warm}, CPU µs/req balancer ${run.balancerCpuUsPerRequest === null ? '?' : fmt(run.balancerCpuUsPerRequest)}, servers ${fmt(run.cpuUsPerRequest)}, ` +
    `load generator ${fmt(run.loadGeneratorCpuUsPerRequest)}; machine ${Math.round(b.machineBusy * 100)}% busy, ${b.otherCores.toFixed(1)} cores not ours`
}

/**
 * One session per connection, logged in through the balancer. A local jwt cluster logs half in,
 * has every server restart with the keys swapped, and logs the other half in (KeyRotationDone).
 * servedBy: how many logins each process answered (the issuer's, in jwt-eddsa).
 */
async function logIn (name: string, target: Target, connections: number, reporter: Reporter): Promise<{ tokens: string[], rotation: KeyRotationDone | null, servedBy: Record<string, number> }> {
  const progress = (e: { done: number, total: number }): void => reporter.status(`${name}: logging in ${e.done}/${e.total} sessions (one per connection)`)
  const servedBy: Record<string, number> = {}
  if (target.keys === undefined) {
    const tokens = await loginSessions(target.url, connections, progress, servedBy)
    const by = Object.keys(servedBy).filter((id) => !id.startsWith('app-'))
    reporter.step(`${name}: ${connections} sessions logged in through the balancer${by.length > 0 ? `, by ${by.join(', ')}` : ''}`)
    return { tokens, rotation: null, servedBy }
  }
  const { kids } = target.keys
  const older = await loginSessions(target.url, Math.ceil(connections / 2), progress, servedBy)
  reporter.status(`${name}: restarting every server with JWT_SECRETS=${kids.newer},${kids.older}...`)
  const restartSeconds = await target.keys.rotate()
  const newer = await loginSessions(target.url, connections - older.length, progress, servedBy)
  reporter.step(`${name}: ${connections} sessions logged in through the balancer, ${older.length} under key "${kids.older}", then every server restarted with JWT_SECRETS=${kids.newer},${kids.older} (${restartSeconds.toFixed(1)} s), ${newer.length} under "${kids.newer}"`)
  return {
    // Alternate, so the connections with either key are spread alike over the servers.
    tokens: older.flatMap((token, i) => newer[i] === undefined ? [token] : [token, newer[i] as string]),
    rotation: { kids, restartSeconds, sessions: { older: older.length, newer: newer.length } },
    servedBy
  }
}
