import { cpus, loadavg } from 'node:os'
import type { LogSink } from '../lib/managed-process.ts'
import { startLoadGenerator } from './load-client.ts'
import { loginSessions, measureRun, type Progress, type RunResult } from './measure.ts'
import type { CompareOptions } from './options.ts'
import { REDIS_MISSING } from '../lib/redis-process.ts'
import { startPrivateRedis } from './private-redis.ts'
import { measureSessionCosts, type SessionCosts } from './session-costs.ts'
import { usesRedis, type CompareMode } from './modes.ts'
import type { Spread } from './stats.ts'
import { combineRuns, type Confidence, type Trend } from './combine-runs.ts'
import { differences, type Difference } from './significance.ts'
import { runNames } from './mode-names.ts'
import { STEADY_RULE_TEXT } from './steady-state.ts'
import { balancerThreadsNote, connectToTarget, startLocalTarget, type Target } from './target.ts'

/** What a session weighs in each mode: on the server side, and on the wire. */
export interface MemoryCost {
  /** Bytes of the credential the client sends on every request. */
  credentialBytes: number | null
  /** Bytes of server-side state per session; 0 for jwt, null when not measured. */
  bytesPerSession: number | null
  /** Where those bytes live and how they were measured. */
  measuredAs: string
}

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
  /** jwt mode on a local cluster: the two keys the servers held, and the rotation between the logins; null otherwise. */
  keyRotation: KeyRotationDone | null
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
    runs: number
    modes: string[]
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
  const sessionCostsPending = measureCosts(options.sessions, modes, reporter, notes, onLog)
  sessionCostsPending.catch(() => {})

  const loadGenerator = startLoadGenerator()
  const bySize = new Map<number, ModeResult[]>()
  const rotations = new Map<string, KeyRotationDone>()
  let sessionCosts: SessionCosts | null | undefined
  try {
    for (const size of remote !== undefined ? [remote.serverCount] : sizes) {
      const targets: Array<{ name: string, target: Target, tokens: string[] }> = []
      try {
        for (const { mode, name } of named) {
          let target: Target
          if (remote !== undefined) target = remote
          else {
            reporter.status(`${name}: starting ${size} app server${size === 1 ? '' : 's'} and the balancer...`)
            const t0 = performance.now()
            target = await startLocalTarget({ mode, servers: size, redisLatencyMs: usesRedis(mode) ? options.redisLatencyMs : 0, onLog })
            reporter.step(`${name}: ${target.description}, up in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
          }
          targets.push({ name, target, tokens: [] })
          const { tokens, rotation } = await logIn(name, target, options.connections, reporter)
          ;(targets[targets.length - 1] as { tokens: string[] }).tokens = tokens
          if (rotation !== null) rotations.set(name, rotation)
        }
        sessionCosts ??= await sessionCostsPending

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
        bySize.set(size, named.map(({ mode, name }) => combineRuns(runs.get(name) ?? [], memoryCostOf(mode, sessionCosts ?? null), rotations.get(name) ?? null)))
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
      runs: options.runs,
      modes: named.map((n) => n.name),
      redisLatencyMs: options.redisLatencyMs,
      sessionsMeasured: options.sessions,
      url: options.url,
      sweep: options.sweep,
      target: remote?.description ?? `a fresh local cluster per mode: ${lastSize} app server${lastSize === 1 ? '' : 's'} behind the balancer${balancerThreadsNote()}${options.redisLatencyMs > 0 ? `, Redis ${options.redisLatencyMs} ms away` : ''}`,
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
 */
async function logIn (name: string, target: Target, connections: number, reporter: Reporter): Promise<{ tokens: string[], rotation: KeyRotationDone | null }> {
  const progress = (e: { done: number, total: number }): void => reporter.status(`${name}: logging in ${e.done}/${e.total} sessions (one per connection)`)
  if (target.keys === undefined) {
    const tokens = await loginSessions(target.url, connections, progress)
    reporter.step(`${name}: ${connections} sessions logged in through the balancer`)
    return { tokens, rotation: null }
  }
  const { kids } = target.keys
  const older = await loginSessions(target.url, Math.ceil(connections / 2), progress)
  reporter.status(`${name}: restarting every server with JWT_SECRETS=${kids.newer},${kids.older}...`)
  const restartSeconds = await target.keys.rotate()
  const newer = await loginSessions(target.url, connections - older.length, progress)
  reporter.step(`${name}: ${connections} sessions logged in through the balancer, ${older.length} under key "${kids.older}", then every server restarted with JWT_SECRETS=${kids.newer},${kids.older} (${restartSeconds.toFixed(1)} s), ${newer.length} under "${kids.newer}"`)
  return {
    // Alternate, so the connections with either key are spread alike over the servers.
    tokens: older.flatMap((token, i) => newer[i] === undefined ? [token] : [token, newer[i] as string]),
    rotation: { kids, restartSeconds, sessions: { older: older.length, newer: newer.length } }
  }
}

async function measureCosts (sessions: number, modes: CompareMode[], reporter: Reporter, notes: string[], onLog?: LogSink): Promise<SessionCosts | null> {
  const t0 = performance.now()
  let redisUrl: string | undefined
  let stopRedis = async (): Promise<void> => {}
  if (modes.includes('redis') && sessions > 0) {
    try {
      const redis = await startPrivateRedis({ onLog })
      redisUrl = redis.directUrl
      stopRedis = redis.stop
    } catch (err) {
      notes.push(`Redis bytes per session not measured: ${(err as Error).message === REDIS_MISSING ? 'no redis-server here' : (err as Error).message}`)
    }
  }
  try {
    const costs = await measureSessionCosts(sessions, { memory: sessions > 0 && modes.includes('memory'), redisUrl })
    if (sessions > 0) reporter.step(`memory per session measured (${fmt(sessions)} sessions) in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    return costs
  } catch (err) {
    notes.push(`memory per session not measured: ${(err as Error).message.split('\n')[0] ?? ''}`)
    return null
  } finally {
    await stopRedis()
  }
}

function memoryCostOf (mode: CompareMode, costs: SessionCosts | null): MemoryCost {
  const sessionId = costs?.credentials.sessionIdBytes ?? null
  switch (mode) {
    case 'memory':
      return {
        credentialBytes: sessionId,
        bytesPerSession: costs?.memory?.bytesPerSession ?? null,
        measuredAs: costs?.memory != null
          ? `V8 heap growth (after full GC) of one process holding ${fmt(costs.memory.sessions)} sessions made by the memory authenticator, on the one server that issued each`
          : 'not measured'
      }
    case 'redis':
      return {
        credentialBytes: sessionId,
        bytesPerSession: costs?.redis?.bytesPerSession ?? null,
        measuredAs: costs?.redis != null
          ? `Redis used_memory growth after ${fmt(costs.redis.sessions)} SET session:<id> <user> EX <ttl> by the redis authenticator, shared by every server`
          : 'not measured'
      }
    case 'postgres':
      return {
        credentialBytes: sessionId,
        bytesPerSession: null,
        measuredAs: 'not measured by compare yet (session-memory.ts measurePostgresSessions measures it)'
      }
    case 'jwt':
      return {
        credentialBytes: costs?.credentials.jwtBytes ?? null,
        bytesPerSession: 0,
        measuredAs: 'nothing is stored: the token carries the claims, signed'
      }
    case 'jwt-revocation':
      return {
        credentialBytes: costs?.credentials.jwtBytes ?? null,
        bytesPerSession: 0,
        measuredAs: 'nothing per live session; each logout keeps the token\'s jti in Redis until its exp'
      }
  }
}
