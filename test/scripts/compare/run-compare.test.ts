import t from 'tap'
import { combineRuns, expectedFailureRate } from '../../../scripts/compare/run-compare.ts'
import { fakeRun } from '../../helpers/compare-report.ts'

const cost = { credentialBytes: 43, bytesPerSession: 150, measuredAs: 'heap' }

t.test('(N-1)/N for memory sessions behind round robin, 0 for the shared modes', async (t) => {
  t.equal(expectedFailureRate('memory', 1), 0)
  t.equal(expectedFailureRate('memory', 4), 0.75)
  t.equal(expectedFailureRate('memory#2', 4), 0.75, 'memory measured a second time is memory')
  t.equal(expectedFailureRate('redis', 4), 0)
  t.equal(expectedFailureRate('jwt', 4), 0)
})

t.test('runs combine to means with 95% intervals, a spread and a trend; the counts stay those of one run, so they still add up', async (t) => {
  const runs = [fakeRun('memory', 3, 900, 2, 1), fakeRun('memory', 3, 1100, 4, 3), fakeRun('memory', 3, 1000, 3, 2)]
  runs[0]!.latencyMs.p99 = 30
  const r = combineRuns(runs, cost)
  t.equal(r.runs, 3)
  t.equal(r.rps, 1000, 'the mean rate')
  t.equal(r.confidence.rps.mean, 1000)
  t.ok(Math.abs((r.confidence.rps.halfWidth as number) - 4.303 * 100 / Math.sqrt(3)) < 1e-9, 'the 95% interval: t(2) × sd / √3')
  t.same(r.spread.rps, { median: 1000, min: 900, max: 1100, relative: 0.1 }, 'the median and the range kept beside it')
  t.equal(r.latencyMs.p99, 16, 'each figure is its own mean: (30 + 9 + 9) / 3')
  t.equal(r.authUsPerRequest, 3)
  t.ok(Math.abs((r.serverTimingAuthUs?.p50 ?? 0) - 2.4) < 1e-9, 'the auth step\'s median too: the mean of the runs\' medians')
  t.ok(r.confidence.authP50 !== null && (r.confidence.authP50.halfWidth ?? 0) > 0, 'with its interval')
  t.ok(Math.abs((r.trend.rps as number) - 0.1) < 1e-9, 'in round order the rate climbed 100 a round around 1,000: +10%')
  t.equal(r.requests, runs[2]!.requests, 'counts are the median-rps run\'s')
  const perServer = Object.values(r.perServer)
  t.equal(perServer.reduce((n, p) => n + p.ok, 0), r.ok)
  t.equal(perServer.reduce((n, p) => n + p.unauthorized, 0), r.unauthorized)
  t.equal(r.expectedAuthFailureRate, 2 / 3)
  t.equal(r.allRuns.length, 3)
  t.same(r.memoryCost, cost)
})

t.test('one run: its own figures, and no interval', async (t) => {
  const run = fakeRun('jwt', 3, 1234, 12)
  const r = combineRuns([run], cost)
  t.equal(r.rps, 1234)
  t.equal(r.confidence.rps.halfWidth, null)
  t.equal(r.trend.rps, null)
  t.ok((r.rpsWithinRun.halfWidth ?? 0) > 0, 'but the run\'s own one-second windows give an interval, for what it is worth')
})

t.test('a store\'s CPU per request is the mean of the runs, and null when a run could not see it', async (t) => {
  const runs = [fakeRun('redis', 3, 900, 500, 1), fakeRun('redis', 3, 1100, 500, 2)]
  runs[0]!.redisCpuUsPerRequest = 20
  runs[1]!.redisCpuUsPerRequest = 40
  t.equal(combineRuns(runs, cost).redisCpuUsPerRequest, 30)
  t.equal(combineRuns(runs, cost).postgresCpuUsPerRequest, null, 'no PostgreSQL in these runs')
  runs[1]!.redisCpuUsPerRequest = null
  t.equal(combineRuns(runs, cost).redisCpuUsPerRequest, null, 'one run without it: no mean')
})
