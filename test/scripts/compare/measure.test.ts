import t from 'tap'
import type { LoadResult } from '../../../scripts/compare/load-generator.ts'
import { judgeBottleneck, kidsOf, summarizeRun } from '../../../scripts/compare/measure.ts'
import type { ServerCounters } from '../../../scripts/compare/prometheus.ts'

const counters = (server: string, c: Partial<ServerCounters>): ServerCounters =>
  ({ server, mode: 'redis', ok: 0, unauthorized: 0, unavailable: 0, authSeconds: 0, authCount: 0, storeCommands: 0, cacheLookups: 0, cacheHits: 0, cacheCommands: 0, cpuSeconds: 0, ...c })

const load: LoadResult = {
  requests: 1010,
  durationSeconds: 2,
  statusCounts: { 200: 600, 401: 400, 503: 10 },
  errors: 3,
  timeouts: 1,
  latencyMs: { p50: 1, p90: 2, p99: 3, mean: 1.2, max: 9 },
  serverTimingAuthMs: { count: 1010, mean: 0.05, p50: 0.04, p99: 0.2 },
  cpuSeconds: 0.4,
  byGroup: null,
  windows: [{ seconds: 1, requests: 500 }, { seconds: 1, requests: 510 }],
  stoppedEarly: false
}

t.test('a run\'s numbers: the client\'s counts, and per server the difference of its own counters', async (t) => {
  const before = new Map([
    ['app-1', counters('app-1', { ok: 100, authCount: 100, authSeconds: 1, storeCommands: 100, cpuSeconds: 5 })],
    ['app-2', counters('app-2', { ok: 50, authCount: 50, authSeconds: 1, storeCommands: 50, cpuSeconds: 5 })]
  ])
  const after = new Map([
    ['app-2', counters('app-2', { ok: 350, unauthorized: 202, unavailable: 5, authCount: 557, authSeconds: 1.0507, storeCommands: 557, cpuSeconds: 5.6 })],
    ['app-1', counters('app-1', { ok: 402, unauthorized: 200, unavailable: 5, authCount: 607, authSeconds: 1.0507, storeCommands: 607, cpuSeconds: 5.6 })]
  ])
  const r = summarizeRun({ mode: 'redis', serverCount: 2 }, { connections: 10, durationSeconds: 2, warmupSeconds: 0 }, load, before, after, 0.5, 0.5)

  t.match(r, { requests: 1010, rps: 505, ok: 600, unauthorized: 400, otherStatus: { 503: 10 } })
  t.equal(r.errors, 13, 'no answer (3) plus statuses that are neither 2xx nor 401 (10)')
  t.equal(r.authFailureRate, 0.4, '401 / (2xx + 401)')
  t.same(Object.keys(r.perServer), ['app-1', 'app-2'], 'servers in natural order')
  t.match(r.perServer['app-1'], { ok: 302, unauthorized: 200, unavailable: 5 })
  t.match(r.serverCounted, { ok: 602, unauthorized: 402, unavailable: 10 }, 'the servers\' own sums')
  t.ok(r.serverCounted.ok + r.serverCounted.unauthorized - (r.ok + r.unauthorized) <= 10, 'they exceed the client\'s by no more than the connections in flight')
  t.equal(r.storeCommandsPerRequest, 1, 'one command per request each server answered')
  t.ok(Math.abs(r.authUsPerRequest - 100) < 1e-6, '0.1014 s over 1014 steps: 100 µs each')
  t.ok(Math.abs(r.cpuUsPerRequest - 1.2 / 1014 * 1e6) < 1e-6, 'CPU per request the servers answered')
  t.equal(r.balancerCpuUsPerRequest, 0.5 / 1010 * 1e6)
  t.same(r.serverTimingAuthUs, { mean: 50, p50: 40, p99: 200 }, 'Server-Timing in µs')
  t.equal(r.bottleneck.balancerCores, 0.25)
  t.equal(r.redisCpuUsPerRequest, null, 'no store CPU given: null, not 0')
  t.equal(r.postgresCpuUsPerRequest, null)
})

t.test('each store\'s CPU per request the servers answered, µs: what one command costs the store\'s thread', async (t) => {
  const after = new Map([['app-1', counters('app-1', { ok: 800, unauthorized: 200, storeCommands: 1000, cpuSeconds: 1 })]])
  const r = summarizeRun({ mode: 'postgres+redis-cache', serverCount: 1 }, { connections: 10, durationSeconds: 2, warmupSeconds: 0 }, load, new Map(), after, 0.5, 0.5, undefined, { redis: 0.03, postgres: 0.002 })
  t.ok(Math.abs((r.redisCpuUsPerRequest as number) - 30) < 1e-9, '0.03 s over the 1,000 requests the servers answered: 30 µs')
  t.ok(Math.abs((r.postgresCpuUsPerRequest as number) - 2) < 1e-9, '2 µs')
  const redisOnly = summarizeRun({ mode: 'redis', serverCount: 1 }, { connections: 10, durationSeconds: 2, warmupSeconds: 0 }, load, new Map(), after, 0.5, 0.5, undefined, { redis: 0.03 })
  t.equal(redisOnly.postgresCpuUsPerRequest, null, 'a store the run has not: null')
})

t.test('the balancer is the bottleneck when its one thread is nearly full, or it out-works every server together', async (t) => {
  const base = { serverCores: 1.2, loadGeneratorCores: 0.3, machineBusy: 0.7, otherCores: 0, cores: 2, servers: 3 }
  t.notOk(judgeBottleneck({ ...base, balancerCores: 0.5 }).balancerIsBottleneck, 'less than the servers, and room on its thread')
  const full = judgeBottleneck({ ...base, balancerCores: 0.9 })
  t.ok(full.balancerIsBottleneck)
  t.match(full.warnings[0], /balancer is the bottleneck.*0\.90 of a core/)
  const heavier = judgeBottleneck({ ...base, serverCores: 0.4, balancerCores: 0.5 })
  t.ok(heavier.balancerIsBottleneck)
  t.match(heavier.warnings[0], /more CPU \(0\.50 cores\) than all 3 app servers together \(0\.40\)/)
  const unknown = judgeBottleneck({ ...base, balancerCores: null })
  t.notOk(unknown.balancerIsBottleneck)
  t.match(unknown.warnings[0], /cannot be seen/, 'with --url it says it cannot tell, rather than saying nothing')
  t.ok(judgeBottleneck({ ...base, balancerCores: 0.1, loadGeneratorCores: 0.95 }).loadGeneratorIsBottleneck)
  t.match(judgeBottleneck({ ...base, balancerCores: 0.1, machineBusy: 1, otherCores: 1.2 }).warnings.join(), /100% busy, 1\.2 of them with work that is not this run's/)
})

t.test('JWTs are grouped by the kid in their header; session ids are not', async (t) => {
  const jwt = (kid: string): string => `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid })).toString('base64url')}.e30.sig`
  t.same(kidsOf([jwt('old'), jwt('new'), jwt('old')]), ['old', 'new', 'old'])
  t.equal(kidsOf(['c2Vzc2lvbi1pZC1vZi00My1ieXRlcy1iYXNlNjR1cmwtLS0']), undefined, 'a session id has no header')
  t.equal(kidsOf([jwt('old'), 'not.a.jwt']), undefined, 'every token must name a kid')

  const grouped: LoadResult = {
    ...load,
    byGroup: {
      old: { connections: 3, statusCounts: { 200: 500, 401: 2, 503: 1 }, serverTimingAuthMs: { count: 503, mean: 0.02, p50: 0.015, p99: 0.1 } },
      new: { connections: 2, statusCounts: { 200: 400 }, serverTimingAuthMs: null }
    }
  }
  const r = summarizeRun({ mode: 'jwt', serverCount: 1 }, { connections: 5, durationSeconds: 2, warmupSeconds: 0 }, grouped, new Map(), new Map(), 0.5, 0.5)
  t.same(r.byKid, {
    old: { connections: 3, ok: 500, unauthorized: 2, other: 1, authUs: { count: 503, mean: 20, p50: 15, p99: 100 } },
    new: { connections: 2, ok: 400, unauthorized: 0, other: 0, authUs: null }
  }, 'per kid: 2xx, 401 and other statuses, and the auth step in µs')
  t.equal(summarizeRun({ mode: 'memory', serverCount: 1 }, { connections: 5, durationSeconds: 2, warmupSeconds: 0 }, load, new Map(), new Map(), 0.5, 0.5).byKid, null)
})
