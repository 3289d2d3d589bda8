import { cpus, loadavg } from 'node:os'
import type { LogSink } from '../lib/managed-process.ts'
import { measureStep, REACHED_SHARE, type CapacityStep } from './capacity-step.ts'
import { expectedFailureRate } from './combine-runs.ts'
import { loginSessions } from './measure.ts'
import { runNames } from './mode-names.ts'
import type { CompareMode } from './modes.ts'
import { startOpenLoadGenerator } from './open-load-client.ts'
import type { CompareOptions } from './options.ts'
import type { Reporter } from './run-compare.ts'
import { connectToTarget, startLocalTarget, type Target } from './target.ts'

/**
 * `npm run compare -- --slo-p99-ms MS`: how many requests per second each mode sustains while
 * its p99 stays under a target (issue 15). An open model (open-load.ts), so the p99 counts the
 * wait of every request a slow moment delayed; the offered rate climbs in geometric steps until
 * a step breaks the target, then a few bisections find the knee between the last rate that held
 * and the first that did not.
 */

/** Each climbing step offers this many times the one before. */
export const GROWTH = 2
/** When the first step fails: halve the rate at most this many times to find one that holds. */
export const DESCEND_STEPS = 3
/** Bisections between the last rate that held and the first that did not. */
export const REFINE_STEPS = 3
/** ...unless the two are already this close. */
const CLOSE_ENOUGH = 1.05
/** Unmeasured load at the first rate on a fresh cluster, before its first step. */
const FIRST_WARMUP_SECONDS = 3
/** The unmeasured load at a step's rate before it is measured, at most. */
const STEP_WARMUP_SECONDS = 0.5

export interface CapacitySettings {
  sloP99Ms: number
  startRps: number
  maxRps: number
  stepSeconds: number
}

export type LimitedBy = 'target' | 'load-generator' | 'max-rps' | 'start-rps'

export interface Capacity {
  sloP99Ms: number
  /** The highest offered rate that held: p99 under the target, reached, errors and refusals as expected. Null: not even the first. */
  heldRps: number | null
  /** The lowest offered rate above it that did not hold; null when none did. */
  failedRps: number | null
  /** What ended the search: the target, the load generator falling behind (the machine is saturated), --max-rps, or nothing holding even at startRps / 8. */
  limitedBy: LimitedBy
  /** CPU per request at heldRps, µs: app servers together, balancer, store (null where there is none or it cannot be seen). */
  cpuUsPerRequest: { servers: number | null, balancer: number | null, store: number | null, total: number | null }
  /** 1e6 / the app servers' CPU µs per request: what one app-server core answers per second at that rate. */
  rpsPerServerCore: number | null
  /** Every step, in the order measured. */
  steps: CapacityStep[]
}

/** One mode's entry in `results`: the contract's fields, from the step at capacity (or the first step, when none held), then the search. */
export interface CapacityResult {
  mode: string
  servers: number
  connections: number
  requests: number
  rps: number
  latencyMs: { p50: number, p90: number, p99: number }
  ok: number
  unauthorized: number
  errors: number
  authFailureRate: number
  expectedAuthFailureRate: number
  perServer: Record<string, { ok: number, unauthorized: number }>
  capacity: Capacity
}

export interface CapacityReport {
  config: {
    sloP99Ms: number
    servers: number
    connections: number
    /** Seconds each step is measured (the contract's durationSeconds). */
    durationSeconds: number
    stepWarmupSeconds: number
    /** Unmeasured load at the first rate on each fresh cluster, before its first step. */
    firstWarmupSeconds: number
    startRps: number
    maxRps: number
    growth: number
    refineSteps: number
    modes: string[]
    storeLatencyMs: number
    url: string | null
    target: string
    machine: { cores: number, loadAverageAtStart: number }
    /** The rule a step is judged by, in words. */
    rule: string
    startedAt: string
    elapsedSeconds: number
  }
  results: CapacityResult[]
  notes: string[]
}

export function capacityRule (sloP99Ms: number): string {
  return `a step holds when its p99 (from when each request was due) is at most ${sloP99Ms} ms, the cluster answered at least ${Math.round(REACHED_SHARE * 100)}% of the offered rate in time, ` +
    'at most 0.1% of requests failed (no answer, never sent, or a status other than 2xx and 401), and, in a mode that refuses no one by design (all but memory), at most 0.1% were refused (401)'
}

/**
 * The search, apart from the cluster so it can be checked on made-up steps: climb by GROWTH from
 * startRps (the last step exactly maxRps) until a step fails (or, when the very first fails, halve
 * it until one holds, DESCEND_STEPS at most), then bisect (geometric means) between the highest
 * rate that held and the lowest that failed. A failed step is measured again, once.
 */
export async function searchCapacity (settings: CapacitySettings, measure: (rate: number, phase: CapacityStep['phase']) => Promise<CapacityStep>): Promise<Capacity> {
  const steps: CapacityStep[] = []
  // A failed step is measured once more, and the second verdict counts (both are kept). One pause
  // of 10 ms or more (a collection, a burst of other work on the machine, the load generator
  // running late) puts 1% of a short step's requests past the target: on a quiet 2-core machine
  // redis failed 500 req/s at p99 34 ms with the machine 42% busy, then held 459 req/s at 4 ms, and
  // postgres failed 707 req/s between holding 649 and 1,000 failing by less. A knee must fail twice.
  const step = async (rate: number, phase: CapacityStep['phase']): Promise<CapacityStep> => {
    const first = await measure(rate, phase)
    if (first.held) return first
    steps.push(first)
    return { ...await measure(rate, phase), repeated: true }
  }
  let good: CapacityStep | null = null
  let bad: CapacityStep | null = null
  for (let rate = settings.startRps; ; rate = Math.min(settings.maxRps, Math.round(rate * GROWTH))) {
    const s = await step(rate, 'climb')
    steps.push(s)
    if (!s.held) { bad = s; break }
    good = s
    if (rate >= settings.maxRps) break
  }
  // Not even the first rate held: come down, so a busy machine still gives a number (and a knee).
  for (let i = 0, rate = settings.startRps; good === null && i < DESCEND_STEPS && rate > 1; i++) {
    rate = Math.max(1, Math.round(rate / GROWTH))
    const s = await step(rate, 'descend')
    steps.push(s)
    if (s.held) good = s
    else bad = s
  }
  for (let i = 0; i < REFINE_STEPS && good !== null && bad !== null && bad.offeredRps / good.offeredRps > CLOSE_ENOUGH; i++) {
    const s = await step(Math.round(Math.sqrt(good.offeredRps * bad.offeredRps)), 'refine')
    steps.push(s)
    if (s.held) good = s
    else bad = s
  }
  const c = good?.cpu
  const total = c === undefined || c.serversUsPerRequest === null
    ? null
    : c.serversUsPerRequest + (c.balancerUsPerRequest ?? 0) + (c.storeUsPerRequest ?? 0)
  return {
    sloP99Ms: settings.sloP99Ms,
    heldRps: good?.offeredRps ?? null,
    failedRps: bad?.offeredRps ?? null,
    limitedBy: bad === null ? 'max-rps' : bad.generatorBehind ? 'load-generator' : good === null ? 'start-rps' : 'target',
    cpuUsPerRequest: { servers: c?.serversUsPerRequest ?? null, balancer: c?.balancerUsPerRequest ?? null, store: c?.storeUsPerRequest ?? null, total },
    rpsPerServerCore: c?.serversUsPerRequest == null || c.serversUsPerRequest <= 0 ? null : 1e6 / c.serversUsPerRequest,
    steps
  }
}

function resultOf (mode: string, servers: number, connections: number, capacity: Capacity): CapacityResult {
  const at = capacity.steps.find((s) => s.offeredRps === capacity.heldRps && s.held) ?? capacity.steps[0] as CapacityStep
  return {
    mode,
    servers,
    connections,
    requests: at.ok + at.unauthorized + at.errors,
    rps: at.achievedRps,
    latencyMs: { p50: at.latencyMs.p50, p90: at.latencyMs.p90, p99: at.latencyMs.p99 },
    ok: at.ok,
    unauthorized: at.unauthorized,
    errors: at.errors,
    authFailureRate: at.authFailureRate,
    expectedAuthFailureRate: expectedFailureRate(mode, servers),
    perServer: at.perServer,
    capacity
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

/** Every mode in turn on a fresh cluster of its own (or the one at --url): log in, search, stop. */
export async function runCapacity (options: CompareOptions & { sloP99Ms: number, startRps: number, maxRps: number, stepSeconds: number }, reporter: Reporter, onLog?: LogSink): Promise<CapacityReport> {
  const started = performance.now()
  const startedAt = new Date().toISOString()
  const loadAverageAtStart = loadavg()[0] ?? 0
  const notes: string[] = []
  let remote: Target | undefined
  if (options.url !== null) {
    remote = await connectToTarget(options.url)
    reporter.step(`Measuring ${remote.description}, in ${remote.mode} mode (from its /health).`)
    notes.push('the cluster at --url was not started here: its processes\' CPU cannot be seen, so there is no CPU per request or capacity per core')
  }
  const named = runNames(remote !== undefined ? [remote.mode] : options.modes)
  const stepWarmupSeconds = Math.min(STEP_WARMUP_SECONDS, options.stepSeconds / 2)
  const firstWarmupSeconds = Math.min(FIRST_WARMUP_SECONDS, options.stepSeconds * 2)
  const generator = startOpenLoadGenerator()
  const results: CapacityResult[] = []
  let servers = remote?.serverCount ?? options.servers
  try {
    for (const { mode, name } of named) {
      const target = remote ?? await startTarget(mode, name, options, reporter, onLog)
      servers = target.serverCount
      try {
        const tokens = await loginSessions(target.url, options.connections, (e) => reporter.status(`${name}: logging in ${e.done}/${e.total} sessions (one per connection)`))
        const settings = { connections: options.connections, stepSeconds: options.stepSeconds, warmupSeconds: stepWarmupSeconds, sloP99Ms: options.sloP99Ms, expectedRefusals: expectedFailureRate(mode, target.serverCount) }
        // A fresh cluster still compiles its hot paths (issue 17): some seconds at the first rate
        // before the first step, so that step measures the mode and not its start.
        reporter.status(`${name}: warming up at ${fmt(options.startRps)} req/s for ${firstWarmupSeconds} s...`)
        await generator.run({ url: target.url, path: '/feeds', tokens, connections: options.connections, rate: options.startRps, durationSeconds: firstWarmupSeconds })
        const capacity = await searchCapacity(options, async (rate, phase) => {
          reporter.status(`${name}: ${phase === 'climb' ? 'climbing' : phase === 'descend' ? 'coming down' : 'refining'}, offering ${fmt(rate)} req/s for ${options.stepSeconds} s...`)
          const s = await measureStep(target, tokens, rate, phase, settings, generator)
          reporter.step(`${name}: ${fmt(rate)} req/s offered, ${fmt(s.achievedRps)} answered, p50 ${s.latencyMs.p50.toFixed(2)} ms, p99 ${s.latencyMs.p99.toFixed(1)} ms: ` +
            `${s.held ? 'held' : `did not hold (${s.why.join('; ')})`}${s.generatorBehind ? `; the load generator fell behind (send lag p99 ${s.sendLagP99Ms.toFixed(1)} ms)` : ''}`)
          return s
        })
        results.push(resultOf(name, target.serverCount, options.connections, capacity))
        reporter.step(`${name}: capacity at p99 <= ${options.sloP99Ms} ms: ${capacity.heldRps === null ? 'none (not even the first step held)' : `${fmt(capacity.heldRps)} req/s`}`)
      } finally {
        if (remote === undefined) {
          reporter.status(`${name}: stopping the cluster...`)
          await target.stop()
        }
      }
    }
  } finally {
    await generator.close()
  }
  if (results.some((r) => r.capacity.steps.some((s) => s.generatorBehind))) {
    notes.push('in some steps the load generator itself fell behind its schedule (its timer late by more than 5 ms at p99, or its one thread nearly full): those latencies include the machine\'s delay, not only the cluster\'s')
  }
  return {
    config: {
      sloP99Ms: options.sloP99Ms,
      servers,
      connections: options.connections,
      durationSeconds: options.stepSeconds,
      stepWarmupSeconds,
      firstWarmupSeconds,
      startRps: options.startRps,
      maxRps: options.maxRps,
      growth: GROWTH,
      refineSteps: REFINE_STEPS,
      modes: named.map((n) => n.name),
      storeLatencyMs: options.storeLatencyMs,
      url: options.url,
      target: remote?.description ?? `a fresh local cluster per mode, one at a time: ${servers} app server${servers === 1 ? '' : 's'} behind the balancer${options.storeLatencyMs > 0 ? `, every store (Redis, PostgreSQL) ${options.storeLatencyMs} ms away` : ''}`,
      machine: { cores: cpus().length, loadAverageAtStart },
      rule: capacityRule(options.sloP99Ms),
      startedAt,
      elapsedSeconds: (performance.now() - started) / 1000
    },
    results,
    notes
  }
}

async function startTarget (mode: CompareMode, name: string, options: CompareOptions, reporter: Reporter, onLog?: LogSink): Promise<Target> {
  reporter.status(`${name}: starting ${options.servers} app server${options.servers === 1 ? '' : 's'} and the balancer...`)
  const t0 = performance.now()
  const target = await startLocalTarget({ mode, servers: options.servers, storeLatencyMs: options.storeLatencyMs, onLog })
  reporter.step(`${name}: ${target.description}, up in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  return target
}
