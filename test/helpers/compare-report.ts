import { judgeBottleneck, type RunResult } from '../../scripts/compare/measure.ts'
import { usesRedis } from '../../scripts/compare/modes.ts'
import { combineRuns, expectedFailureRate, type CompareReport, type KeyRotationDone, type MemoryCost } from '../../scripts/compare/run-compare.ts'
import { differences } from '../../scripts/compare/significance.ts'
import { meanInterval } from '../../scripts/compare/stats.ts'

/** A made-up but self-consistent run: N servers, round robin, memory refusing (N-1)/N; its ten one-second windows 1% either side of its rate by turns. */
export function fakeRun (mode: string, servers: number, rps: number, authUs: number, round = 1): RunResult {
  const windows = Array.from({ length: 10 }, (_, i) => i % 2 === 0 ? 0.99 : 1.01).map((f) => ({ seconds: 1, requests: Math.round(rps * f), rps: rps * f, cpuUsPerRequest: 700 }))
  const requests = Math.round(rps * 2)
  const unauthorized = mode === 'memory' ? Math.round(requests * (servers - 1) / servers) : 0
  const ok = requests - unauthorized
  const perServer: RunResult['perServer'] = {}
  for (let i = 1; i <= servers; i++) {
    perServer[`app-${i}`] = {
      ok: Math.floor(ok / servers) + (i <= ok % servers ? 1 : 0),
      unauthorized: Math.floor(unauthorized / servers) + (i <= unauthorized % servers ? 1 : 0),
      unavailable: 0,
      authUsPerRequest: authUs,
      storeCommandsPerRequest: usesRedis(mode) ? 1 : 0,
      cpuUsPerRequest: 300,
      cpuCores: 0.3
    }
  }
  return {
    mode,
    servers,
    connections: 10,
    durationSeconds: 2,
    requests,
    rps,
    latencyMs: { p50: 2, p90: 4, p99: 9, mean: 2.5, max: 20 },
    ok,
    unauthorized,
    errors: 0,
    otherStatus: {},
    authFailureRate: unauthorized / requests,
    perServer,
    serverCounted: { ok, unauthorized, unavailable: 0 },
    authUsPerRequest: authUs,
    serverTimingAuthUs: { mean: authUs, p50: authUs * 0.8, p99: authUs * 3 },
    storeCommandsPerRequest: usesRedis(mode) ? 1 : 0,
    sessionCache: null,
    cpuUsPerRequest: 300,
    balancerCpuUsPerRequest: 250,
    loadGeneratorCpuUsPerRequest: 150,
    bottleneck: judgeBottleneck({ balancerCores: 0.5, serverCores: 0.9, loadGeneratorCores: 0.3, machineBusy: 0.8, otherCores: 0, cores: 2, servers }),
    // jwt (as compare runs it): half the connections hold a token from each of two keys, checked as fast.
    byKid: mode === 'jwt'
      ? {
          new: { connections: 5, ok: Math.ceil(ok / 2), unauthorized: 0, other: 0, authUs: { count: Math.ceil(ok / 2), mean: authUs, p50: authUs * 0.8, p99: authUs * 3 } },
          old: { connections: 5, ok: Math.floor(ok / 2), unauthorized: 0, other: 0, authUs: { count: Math.floor(ok / 2), mean: authUs, p50: authUs * 0.8, p99: authUs * 3 } }
        }
      : null,
    warmup: { seconds: 4.2, capSeconds: 15, steady: true, windows: [] },
    windows,
    rpsWithinRun: meanInterval(windows.map((w) => w.rps)),
    servedBefore: 5000 * round,
    round,
    order: 1
  }
}

const COSTS: Record<string, MemoryCost> = {
  memory: { credentialBytes: 43, bytesPerSession: 157, measuredAs: 'heap' },
  redis: { credentialBytes: 43, bytesPerSession: 181, measuredAs: 'redis' },
  jwt: { credentialBytes: 249, bytesPerSession: 0, measuredAs: 'none' },
  'jwt-revocation': { credentialBytes: 249, bytesPerSession: 0, measuredAs: 'none per live session' }
}
const AUTH_US: Record<string, number> = { memory: 2, redis: 90, jwt: 15, 'jwt-revocation': 95 }
const ROTATION: KeyRotationDone = { kids: { newer: 'new', older: 'old' }, restartSeconds: 1.2, sessions: { older: 5, newer: 5 } }

// With --runs 3: each mode's rate 2% below, at and 2% above its own, its auth step the same each time.
const ROUND_FACTORS = [0.98, 1, 1.02]

/**
 * A whole report as runCompare would return it, with a sweep over 1..3 servers when asked, and
 * three runs per mode when asked (rates 50 req/s apart between modes, ±2% between runs: memory,
 * redis and jwt-revocation clearly apart, jwt and jwt-revocation's neighbours too).
 */
export function fakeReport (options: { sweep?: boolean, runs?: 1 | 3 } = {}): CompareReport {
  const sizes = options.sweep === true ? [1, 2, 3] : [3]
  const modes = ['memory', 'redis', 'jwt', 'jwt-revocation']
  const factors = options.runs === 3 ? ROUND_FACTORS : [1]
  const bySize = sizes.map((n) => modes.map((m, i) => combineRuns(
    factors.map((f, round) => fakeRun(m, n, (1000 + 100 * n - 50 * i) * f, AUTH_US[m] as number, round + 1)),
    COSTS[m] as MemoryCost, m === 'jwt' ? ROTATION : null)))
  const results = bySize[bySize.length - 1] ?? []
  return {
    config: {
      servers: sizes[sizes.length - 1] as number,
      connections: 10,
      durationSeconds: 2,
      warmupSeconds: 15,
      runs: factors.length,
      modes,
      storeLatencyMs: 0,
      redisLatencyMs: 0,
      sessionsMeasured: 1000,
      url: null,
      sweep: options.sweep === true ? sizes : null,
      target: 'a fake cluster',
      machine: { cores: 2, loadAverageAtStart: 1 },
      warmupRule: 'until steady (a made-up rule), at most 15 s',
      startedAt: new Date(0).toISOString(),
      elapsedSeconds: 10
    },
    results,
    sweep: options.sweep === true
      ? bySize.flat().map((r) => ({
        servers: r.servers,
        mode: r.mode,
        rps: r.rps,
        latencyMs: { p50: r.latencyMs.p50, p90: r.latencyMs.p90, p99: r.latencyMs.p99 },
        authFailureRate: r.authFailureRate,
        expectedAuthFailureRate: expectedFailureRate(r.mode, r.servers),
        authUsPerRequest: r.authUsPerRequest,
        cpuUsPerRequest: r.cpuUsPerRequest,
        balancerIsBottleneck: false
      }))
      : null,
    sessionCosts: null,
    differences: differences(results),
    notes: []
  }
}
