import type { OpenLoadGenerator } from './open-load-client.ts'
import type { OpenLoadResult } from './open-load.ts'
import { machineTimes, processCpuSeconds } from './process-cpu.ts'
import { difference, type ServerCounters } from './prometheus.ts'
import type { Target } from './target.ts'

/** An offered rate counts as reached when the cluster answered at least this share of it in time. */
export const REACHED_SHARE = 0.97
/** More failed requests (no answer, never sent, a status other than 2xx and 401) than this share breaks the target. */
export const ERROR_BUDGET = 0.001
/**
 * Refusals break the target in a mode that refuses no one by design (every mode but memory): more
 * than the error budget there is a failure. Memory mode behind a round robin refuses (N-1)/N by
 * design, and how close a short step comes to it depends on how the connections fall in step
 * with the round robin, not on load: there a 401 is an answer like any other, counted and shown
 * beside the expected share, not judged.
 */
export function refusalsBreak (expected: number, authFailureRate: number): boolean {
  return expected === 0 && authFailureRate > ERROR_BUDGET
}
// A Node process does its JavaScript on one thread: near one core, the generator cannot go faster.
const GENERATOR_SATURATED_CORES = 0.85

export interface StepSettings {
  connections: number
  stepSeconds: number
  warmupSeconds: number
  sloP99Ms: number
  /** The share of authenticated requests the mode refuses by design: (N-1)/N for memory behind a round robin. */
  expectedRefusals: number
}

/** CPU time per request answered in the step, µs, and CPU seconds per second (cores); null where the process cannot be seen. */
export interface StepCpu {
  serversUsPerRequest: number | null
  balancerUsPerRequest: number | null
  storeUsPerRequest: number | null
  generatorUsPerRequest: number | null
  serverCores: number | null
  balancerCores: number | null
  storeCores: number | null
  generatorCores: number | null
  /** Every core of the machine, busy fraction; includes work that is not this run's. */
  machineBusy: number
}

/** One offered rate, held for a step: what came back, and whether it met the target. */
export interface CapacityStep {
  phase: 'climb' | 'descend' | 'refine'
  offeredRps: number
  achievedRps: number
  /** achieved within 3% of offered. */
  reached: boolean
  latencyMs: { p50: number, p90: number, p99: number, max: number }
  /** From when each request left, not when it was due: what a closed loop would have reported. */
  serviceMs: { p50: number, p99: number }
  scheduled: number
  ok: number
  unauthorized: number
  /** No answer, never sent, or a status other than 2xx and 401. */
  errors: number
  otherStatus: Record<string, number>
  authFailureRate: number
  perServer: Record<string, { ok: number, unauthorized: number }>
  cpu: StepCpu
  /** The load generator itself ran behind its schedule (its timer late, or its one thread full): the machine, not the mode, may have set this step's latency. */
  generatorBehind: boolean
  sendLagP99Ms: number
  held: boolean
  /** The second measurement of a rate whose first failed while the generator was behind: this one's verdict counts. */
  repeated?: boolean
  /** Why it did not hold, in words; empty when it held. */
  why: string[]
}

const perRequest = (seconds: number | undefined, requests: number): number | null =>
  seconds === undefined || requests === 0 ? null : seconds / requests * 1e6

function delta (before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined ? undefined : after - before
}

/** A warm-up at the rate (not counted), then the measured step, with every process's CPU read around it. */
export async function measureStep (target: Target, tokens: string[], rate: number, phase: CapacityStep['phase'], settings: StepSettings, generator: OpenLoadGenerator): Promise<CapacityStep> {
  const job = { url: target.url, path: '/feeds', tokens, connections: settings.connections, rate }
  if (settings.warmupSeconds > 0) await generator.run({ ...job, durationSeconds: settings.warmupSeconds })
  const read = (): { servers?: number, balancer?: number, store?: number, generator?: number } => ({
    servers: target.serverCpuSeconds(),
    balancer: target.balancerCpuSeconds(),
    store: target.storeCpuSeconds?.(),
    generator: processCpuSeconds(generator.pid)
  })
  const countersBefore = await target.scrape()
  const before = read()
  const machineBefore = machineTimes()
  const load = await generator.run({ ...job, durationSeconds: settings.stepSeconds })
  const machineAfter = machineTimes()
  const after = read()
  const countersAfter = await target.scrape()
  const seconds = load.durationSeconds + load.drainSeconds
  const cpu = {
    servers: delta(before.servers, after.servers),
    balancer: delta(before.balancer, after.balancer),
    store: delta(before.store, after.store),
    // /proc counts in hundredths of a second: over a 1 s step the generator's own count is finer.
    generator: delta(before.generator, after.generator) ?? load.cpuSeconds
  }
  const machineBusy = (machineAfter.busy - machineBefore.busy) / Math.max(1, machineAfter.total - machineBefore.total)
  return judgeStep(phase, load, {
    serversUsPerRequest: perRequest(cpu.servers, load.completed),
    balancerUsPerRequest: perRequest(cpu.balancer, load.completed),
    storeUsPerRequest: perRequest(cpu.store, load.completed),
    generatorUsPerRequest: perRequest(cpu.generator, load.completed),
    serverCores: cpu.servers === undefined ? null : cpu.servers / seconds,
    balancerCores: cpu.balancer === undefined ? null : cpu.balancer / seconds,
    storeCores: cpu.store === undefined ? null : cpu.store / seconds,
    generatorCores: cpu.generator / seconds,
    machineBusy
  }, perServerCounts(countersBefore, countersAfter), settings)
}

function perServerCounts (before: Map<string, ServerCounters>, after: Map<string, ServerCounters>): Record<string, { ok: number, unauthorized: number }> {
  const out: Record<string, { ok: number, unauthorized: number }> = {}
  for (const [id, counters] of [...after.entries()].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) {
    const d = difference(counters, before.get(id))
    out[id] = { ok: d.ok, unauthorized: d.unauthorized }
  }
  return out
}

/** A step's numbers and its verdict against the target; apart from measureStep so it can be checked on made-up results. */
export function judgeStep (phase: CapacityStep['phase'], load: OpenLoadResult, cpu: StepCpu, perServer: CapacityStep['perServer'], settings: Pick<StepSettings, 'sloP99Ms' | 'expectedRefusals'>): CapacityStep {
  const ok = Object.entries(load.statusCounts).filter(([s]) => s.startsWith('2')).reduce((n, [, c]) => n + c, 0)
  const unauthorized = load.statusCounts['401'] ?? 0
  const otherStatus = Object.fromEntries(Object.entries(load.statusCounts).filter(([s]) => !s.startsWith('2') && s !== '401'))
  const errors = load.errors + load.unsent + Object.values(otherStatus).reduce((n, c) => n + c, 0)
  const authFailureRate = ok + unauthorized > 0 ? unauthorized / (ok + unauthorized) : 0
  const reached = load.achievedRps >= load.offeredRps * REACHED_SHARE
  const generatorBehind = load.generatorBehind || (cpu.generatorCores !== null && cpu.generatorCores >= GENERATOR_SATURATED_CORES)

  const why: string[] = []
  if (!(load.latencyMs.p99 <= settings.sloP99Ms)) why.push(`p99 ${load.latencyMs.p99.toFixed(1)} ms > ${settings.sloP99Ms} ms`)
  if (!reached) why.push(`reached ${Math.round(load.achievedRps)} of ${Math.round(load.offeredRps)} req/s`)
  if (errors > load.scheduled * ERROR_BUDGET) why.push(`${errors} failed of ${load.scheduled} (no answer, never sent, or not 2xx/401)`)
  if (refusalsBreak(settings.expectedRefusals, authFailureRate)) why.push(`${(authFailureRate * 100).toFixed(1)}% refused, none expected`)

  return {
    phase,
    offeredRps: load.offeredRps,
    achievedRps: load.achievedRps,
    reached,
    latencyMs: { p50: load.latencyMs.p50, p90: load.latencyMs.p90, p99: load.latencyMs.p99, max: load.latencyMs.max },
    serviceMs: { p50: load.serviceMs.p50, p99: load.serviceMs.p99 },
    scheduled: load.scheduled,
    ok,
    unauthorized,
    errors,
    otherStatus,
    authFailureRate,
    perServer,
    cpu,
    generatorBehind,
    sendLagP99Ms: load.sendLagMs.p99,
    held: why.length === 0,
    why
  }
}
