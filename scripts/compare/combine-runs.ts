import type { RunResult } from './measure.ts'
import { baseMode } from './mode-names.ts'
import type { KeyRotationDone, MemoryCost, ModeResult } from './run-compare.ts'
import { meanInterval, median, spread, trendPerStep, type Interval, type Spread } from './stats.ts'

/** Each figure the report gives an interval for, over the runs of one mode. */
export interface Confidence {
  rps: Interval
  p50: Interval
  p90: Interval
  p99: Interval
  /** The auth step's median from Server-Timing, µs; null when the responses carried none. */
  authP50: Interval | null
  authUsPerRequest: Interval
  cpuUsPerRequest: Interval
  balancerCpuUsPerRequest: Interval | null
  loadGeneratorCpuUsPerRequest: Interval
}

/** How a figure moved from round to round: the least-squares slope, as a share of the mean per round (stats.ts trendPerStep). */
export interface Trend { rps: number | null, authP50: number | null, cpuUsPerRequest: number | null }

const SERVER_TIMING_RESOLUTION_US = 1

export function expectedFailureRate (mode: string, servers: number): number {
  return baseMode(mode) === 'memory' ? (servers - 1) / servers : 0
}

/**
 * Runs of one mode to one result. Rates, latencies and costs are the means of the runs, each
 * with its 95% interval (`confidence`); the counts are those of the median-rps run, so they still
 * add up (its requests / duration is that run's rate, near the mean). `spread` keeps the median
 * and the range.
 */
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
  const interval = (pick: (r: RunResult) => number, resolution = 0): Interval => meanInterval(runs.map(pick), resolution)
  const timed = runs.every((r) => r.serverTimingAuthUs !== null)
  const balancerSeen = runs.every((r) => r.balancerCpuUsPerRequest !== null)
  const confidence: Confidence = {
    rps: interval((r) => r.rps),
    p50: interval((r) => r.latencyMs.p50),
    p90: interval((r) => r.latencyMs.p90),
    p99: interval((r) => r.latencyMs.p99),
    // Server-Timing carries whole microseconds (services/plugins/authenticate.ts), and its median is one of them.
    authP50: timed ? interval((r) => r.serverTimingAuthUs?.p50 ?? Number.NaN, SERVER_TIMING_RESOLUTION_US) : null,
    authUsPerRequest: interval((r) => r.authUsPerRequest),
    cpuUsPerRequest: interval((r) => r.cpuUsPerRequest),
    balancerCpuUsPerRequest: balancerSeen ? interval((r) => r.balancerCpuUsPerRequest ?? Number.NaN) : null,
    loadGeneratorCpuUsPerRequest: interval((r) => r.loadGeneratorCpuUsPerRequest)
  }
  const inOrder = [...runs].sort((a, b) => a.round - b.round)
  const timing = (pick: 'mean' | 'p50' | 'p99'): number => meanInterval(runs.map((r) => r.serverTimingAuthUs?.[pick] ?? Number.NaN)).mean
  // A store's CPU per request: the mean of the runs, or null when any run could not see it.
  const storeMean = (pick: (r: RunResult) => number | null | undefined): number | null =>
    runs.every((r) => typeof pick(r) === 'number') ? meanInterval(runs.map((r) => pick(r) as number)).mean : null
  return {
    ...middle,
    rps: confidence.rps.mean,
    latencyMs: { ...middle.latencyMs, p50: confidence.p50.mean, p90: confidence.p90.mean, p99: confidence.p99.mean },
    authUsPerRequest: confidence.authUsPerRequest.mean,
    serverTimingAuthUs: timed ? { mean: timing('mean'), p50: timing('p50'), p99: timing('p99') } : middle.serverTimingAuthUs,
    cpuUsPerRequest: confidence.cpuUsPerRequest.mean,
    balancerCpuUsPerRequest: confidence.balancerCpuUsPerRequest?.mean ?? middle.balancerCpuUsPerRequest,
    loadGeneratorCpuUsPerRequest: confidence.loadGeneratorCpuUsPerRequest.mean,
    redisCpuUsPerRequest: storeMean((r) => r.redisCpuUsPerRequest),
    postgresCpuUsPerRequest: storeMean((r) => r.postgresCpuUsPerRequest),
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
    confidence,
    trend: {
      rps: trendPerStep(inOrder.map((r) => r.rps)),
      authP50: timed ? trendPerStep(inOrder.map((r) => r.serverTimingAuthUs?.p50 ?? Number.NaN)) : null,
      cpuUsPerRequest: trendPerStep(inOrder.map((r) => r.cpuUsPerRequest))
    },
    memoryCost,
    allRuns: runs,
    keyRotation
  }
}
