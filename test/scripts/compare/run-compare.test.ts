import t from 'tap'
import { combineRuns, expectedFailureRate } from '../../../scripts/compare/run-compare.ts'
import { fakeRun } from '../../helpers/compare-report.ts'

const cost = { credentialBytes: 43, bytesPerSession: 150, measuredAs: 'heap' }

t.test('(N-1)/N for memory sessions behind round robin, 0 for the shared modes', async (t) => {
  t.equal(expectedFailureRate('memory', 1), 0)
  t.equal(expectedFailureRate('memory', 4), 0.75)
  t.equal(expectedFailureRate('redis', 4), 0)
  t.equal(expectedFailureRate('jwt', 4), 0)
})

t.test('runs combine to medians and a spread; the counts stay those of one run, so they still add up', async (t) => {
  const runs = [fakeRun('memory', 3, 900, 2), fakeRun('memory', 3, 1100, 4), fakeRun('memory', 3, 1000, 3)]
  runs[0]!.latencyMs.p99 = 30
  const r = combineRuns(runs, cost)
  t.equal(r.runs, 3)
  t.equal(r.rps, 1000)
  t.same(r.spread.rps, { median: 1000, min: 900, max: 1100, relative: 0.1 })
  t.equal(r.latencyMs.p99, 9, 'each statistic is its own median')
  t.equal(r.authUsPerRequest, 3)
  t.equal(r.requests, runs[2]!.requests, 'counts are the median-rps run\'s')
  const perServer = Object.values(r.perServer)
  t.equal(perServer.reduce((n, p) => n + p.ok, 0), r.ok)
  t.equal(perServer.reduce((n, p) => n + p.unauthorized, 0), r.unauthorized)
  t.equal(r.expectedAuthFailureRate, 2 / 3)
  t.equal(r.allRuns.length, 3)
  t.same(r.memoryCost, cost)
})
