import { cpus, loadavg } from 'node:os'
import type { LogSink } from '../lib/managed-process.ts'
import { startLoadGenerator } from './load-client.ts'
import { loginSessions, measureRun, type Progress, type RunResult } from './measure.ts'
import type { CompareOptions } from './options.ts'
import { REDIS_MISSING } from '../lib/redis-process.ts'
import { startPrivateRedis } from './private-redis.ts'
import { measureSessionCosts, type SessionCosts } from './session-costs.ts'
import { usesRedis, type CompareMode } from './modes.ts'
import { median, spread, type Spread } from './stats.ts'
import { connectToTarget, startLocalTarget, type Target } from './target.ts'

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
  /** Across the runs: the top-level rps, latency and costs are these medians; the counts are the median-rps run's. */
  spread: { rps: Spread, p50: Spread, p90: Spread, p99: Spread, authUsPerRequest: Spread, cpuUsPerRequest: Spread }
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
    startedAt: string
    elapsedSeconds: number
  }
  results: ModeResult[]
  sweep: SweepPoint[] | null
  sessionCosts: SessionCosts | null
  /** Why something was not measured. */
  notes: string[]
}

export interface Reporter {
  /** A finished step: always printed. */
  step (text: string): void
  /** What is going on now: shown on a terminal, overwritten by the next status. */
  status (text: string): void
}

export function expectedFailureRate (mode: string, servers: number): number {
  return mode === 'memory' ? (servers - 1) / servers : 0
}

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
      const targets: Array<{ target: Target, tokens: string[] }> = []
      try {
        for (const mode of modes) {
          let target: Target
          if (remote !== undefined) target = remote
          else {
            reporter.status(`${mode}: starting ${size} app server${size === 1 ? '' : 's'} and the balancer...`)
            const t0 = performance.now()
            target = await startLocalTarget({ mode, servers: size, redisLatencyMs: usesRedis(mode) ? options.redisLatencyMs : 0, onLog })
            reporter.step(`${mode}: ${target.description}, up in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
          }
          targets.push({ target, tokens: [] })
          const entry = targets[targets.length - 1] as { target: Target, tokens: string[] }
          const progress = (e: { done: number, total: number }): void => reporter.status(`${mode}: logging in ${e.done}/${e.total} sessions (one per connection)`)
          if (target.keys === undefined) {
            entry.tokens = await loginSessions(target.url, options.connections, progress)
            reporter.step(`${mode}: ${options.connections} sessions logged in through the balancer`)
          } else {
            const { kids } = target.keys
            const older = await loginSessions(target.url, Math.ceil(options.connections / 2), progress)
            reporter.status(`${mode}: restarting every server with JWT_SECRETS=${kids.newer},${kids.older}...`)
            const restartSeconds = await target.keys.rotate()
            const newer = await loginSessions(target.url, options.connections - older.length, progress)
            // Alternate, so the connections with either key are spread alike over the servers.
            entry.tokens = older.flatMap((token, i) => newer[i] === undefined ? [token] : [token, newer[i] as string])
            rotations.set(mode, { kids, restartSeconds, sessions: { older: older.length, newer: newer.length } })
            reporter.step(`${mode}: ${options.connections} sessions logged in through the balancer, ${older.length} under key "${kids.older}", then every server restarted with JWT_SECRETS=${kids.newer},${kids.older} (${restartSeconds.toFixed(1)} s), ${newer.length} under "${kids.newer}"`)
          }
        }
        sessionCosts ??= await sessionCostsPending

        const runs = new Map<string, RunResult[]>()
        for (let round = 1; round <= options.runs; round++) {
          for (const { target, tokens } of targets) {
            const label = `${target.mode}${options.runs > 1 ? ` run ${round}/${options.runs}` : ''}${sizes.length > 1 ? ` (${size} servers)` : ''}`
            const onProgress: Progress = (e) => {
              reporter.status(`${label}: ${e.phase === 'warmup' ? 'warming up' : 'measuring'} ${e.done}/${e.total} s${e.rps !== undefined ? `, ${fmt(e.rps)} req/s` : ''}`)
            }
            const run = await measureRun(target, tokens, options, loadGenerator, onProgress)
            runs.set(target.mode, [...(runs.get(target.mode) ?? []), run])
            reporter.step(`${label}: ${fmt(run.rps)} req/s, p99 ${run.latencyMs.p99.toFixed(1)} ms, ${(run.authFailureRate * 100).toFixed(1)}% refused` +
              (run.bottleneck.balancerIsBottleneck ? ' (balancer-bound)' : ''))
          }
        }
        bySize.set(size, modes.map((mode) => combineRuns(runs.get(mode) ?? [], memoryCostOf(mode, sessionCosts ?? null), rotations.get(mode) ?? null)))
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
      modes,
      redisLatencyMs: options.redisLatencyMs,
      sessionsMeasured: options.sessions,
      url: options.url,
      sweep: options.sweep,
      target: remote?.description ?? `a fresh local cluster per mode: ${lastSize} app server${lastSize === 1 ? '' : 's'} behind the balancer${options.redisLatencyMs > 0 ? `, Redis ${options.redisLatencyMs} ms away` : ''}`,
      machine: { cores: cpus().length, loadAverageAtStart: loadavg()[0] ?? 0 },
      startedAt,
      elapsedSeconds: (performance.now() - started) / 1000
    },
    results,
    sweep,
    sessionCosts: sessionCosts ?? null,
    notes
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

/** Runs of one mode to one result: medians of rates and costs, counts of the median-rps run, and the spread. */
export function combineRuns (runs: RunResult[], memoryCost: MemoryCost, keyRotation: KeyRotationDone | null = null): ModeResult {
  if (runs.length === 0) throw new Error('no runs to combine')
  const byRps = [...runs].sort((a, b) => a.rps - b.rps)
  const middle = byRps[Math.ceil(byRps.length / 2) - 1] as RunResult
  const of = (pick: (r: RunResult) => number): Spread => spread(runs.map(pick))
  const s = {
    rps: of((r) => r.rps),
    p50: of((r) => r.latencyMs.p50),
    p90: of((r) => r.latencyMs.p90),
    p99: of((r) => r.latencyMs.p99),
    authUsPerRequest: of((r) => r.authUsPerRequest),
    cpuUsPerRequest: of((r) => r.cpuUsPerRequest)
  }
  return {
    ...middle,
    rps: s.rps.median,
    latencyMs: { ...middle.latencyMs, p50: s.p50.median, p90: s.p90.median, p99: s.p99.median },
    authUsPerRequest: s.authUsPerRequest.median,
    cpuUsPerRequest: s.cpuUsPerRequest.median,
    storeCommandsPerRequest: median(runs.map((r) => r.storeCommandsPerRequest)),
    bottleneck: {
      ...middle.bottleneck,
      balancerIsBottleneck: runs.some((r) => r.bottleneck.balancerIsBottleneck),
      loadGeneratorIsBottleneck: runs.some((r) => r.bottleneck.loadGeneratorIsBottleneck),
      warnings: [
        ...middle.bottleneck.warnings,
        ...(runs.length > 1 && runs.some((r) => r.bottleneck.balancerIsBottleneck) && !middle.bottleneck.balancerIsBottleneck
          ? [`the balancer was the bottleneck in ${runs.filter((r) => r.bottleneck.balancerIsBottleneck).length} of ${runs.length} runs`]
          : [])
      ]
    },
    expectedAuthFailureRate: expectedFailureRate(middle.mode, middle.servers),
    runs: runs.length,
    spread: s,
    memoryCost,
    allRuns: runs,
    keyRotation
  }
}
