import t from 'tap'
import { combineRuns } from '../../../scripts/compare/run-compare.ts'
import { differences } from '../../../scripts/compare/significance.ts'
import { fakeReport, fakeRun } from '../../helpers/compare-report.ts'

const cost = { credentialBytes: 43, bytesPerSession: 150, measuredAs: 'heap' }
const find = (ds: ReturnType<typeof differences>, a: string, b: string, figure: string): ReturnType<typeof differences>[number] | undefined =>
  ds.find((d) => d.a === a && d.b === b && d.figure === figure)

t.test('with three runs: a difference is established when the two 95% intervals do not overlap', async (t) => {
  // 1,300, 1,250, 1,200 and 1,150 req/s, each ±2% between its runs: intervals of about ±5%.
  const ds = fakeReport({ runs: 3 }).differences
  t.equal(ds.length, 6 * 5, 'every pair of the four modes, five figures each')
  const far = find(ds, 'memory', 'jwt-revocation', 'rps')
  t.match(far, { basis: 'runs', overlap: false, established: true }, '1,300 against 1,150: apart')
  t.ok(Math.abs((far?.change ?? 0) - (1150 - 1300) / 1300) < 1e-9, 'the change from the first to the second')
  t.match(find(ds, 'memory', 'redis', 'rps'), { basis: 'runs', overlap: true, established: false }, '1,300 against 1,250: within the noise')
  t.match(find(ds, 'jwt', 'jwt-revocation', 'authP50'), { basis: 'runs', established: true }, 'an auth step that did not move at all between runs: 12 µs against 76 µs is real')
  t.match(find(ds, 'redis', 'jwt-revocation', 'authP50'), { basis: 'runs', established: true }, 'and 72 µs against 76 µs, 4 µs apart, each known to half a microsecond')
})

t.test('with one run: nothing is established; req/s is held against the run\'s own windows only', async (t) => {
  const ds = fakeReport().differences
  t.ok(ds.every((d) => !d.established), 'one run: no difference is established')
  t.match(find(ds, 'memory', 'redis', 'rps'), { basis: 'windows', overlap: false }, 'windows ±1%: 1,300 and 1,250 are apart even within the run')
  t.match(find(ds, 'memory', 'redis', 'authP50'), { basis: null, overlap: null }, 'no interval for the rest')
})

t.test('whole microseconds: two auth steps that differ by one step in every run are not told apart', async (t) => {
  const a = combineRuns([1, 2, 3].map((round) => fakeRun('jwt', 3, 1000, 8.75, round)), cost)
  const b = combineRuns([1, 2, 3].map((round) => ({ ...fakeRun('jwt', 3, 1000, 10, round), mode: 'jwt#2' })), cost)
  // Medians of 7 and 8 µs (0.8 of the auth step's mean in the fake runs), the same in every run.
  t.same([a.serverTimingAuthUs?.p50, b.serverTimingAuthUs?.p50], [7, 8])
  t.match(find(differences([a, b]), 'jwt', 'jwt#2', 'authP50'), { overlap: true, established: false }, '[6.5, 7.5] and [7.5, 8.5] touch')
})

t.test('the same mode twice: names of their own, compared like any two modes', async (t) => {
  const a = combineRuns([900, 1000, 1100].map((rps, i) => fakeRun('jwt', 3, rps, 12, i + 1)), cost)
  const b = combineRuns([950, 1020, 1080].map((rps, i) => ({ ...fakeRun('jwt', 3, rps, 12, i + 1), mode: 'jwt#2' })), cost)
  t.equal(b.mode, 'jwt#2')
  t.match(find(differences([a, b]), 'jwt', 'jwt#2', 'rps'), { basis: 'runs', overlap: true, established: false })
})
