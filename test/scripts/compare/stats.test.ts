import t from 'tap'
import { intervalsOverlap, mean, meanInterval, median, percentile, Samples, spread, tQuantile975, trendPerStep } from '../../../scripts/compare/stats.ts'

t.test('nearest-rank percentiles', async (t) => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1)
  t.equal(percentile(sorted, 50), 50)
  t.equal(percentile(sorted, 99), 99)
  t.equal(percentile(sorted, 100), 100)
  t.equal(percentile([7], 99), 7)
  t.ok(Number.isNaN(percentile([], 50)))
  t.equal(median([3, 1, 2]), 2)
  t.equal(mean([1, 2, 3, 6]), 3)
})

t.test('spread: the median, the range, and half the range as a share of the median', async (t) => {
  t.same(spread([90, 100, 110]), { median: 100, min: 90, max: 110, relative: 0.1 })
  t.same(spread([5]), { median: 5, min: 5, max: 5, relative: 0 })
})

t.test('Samples grows as needed and sorts numerically', async (t) => {
  const s = new Samples()
  for (let i = 10_000; i > 0; i--) s.push(i / 10)
  t.equal(s.length, 10_000)
  const sorted = s.sorted()
  t.equal(sorted[0], 0.1)
  t.equal(sorted[9_999], 1000)
  const capped = new Samples(5000)
  for (let i = 0; i < 6000; i++) capped.push(i)
  t.equal(capped.length, 5000, 'a cap keeps a very long run from eating the memory')
})

t.test('Student\'s t, two-sided 95%: the table to 30 degrees of freedom, then close to the normal\'s 1.96', async (t) => {
  t.equal(tQuantile975(1), 12.706)
  t.equal(tQuantile975(2), 4.303)
  t.equal(tQuantile975(30), 2.042)
  // Statistics tables: t(40) = 2.021, t(60) = 2.000, t(120) = 1.980.
  for (const [df, table] of [[40, 2.021], [60, 2.0], [120, 1.98]] as const) t.ok(Math.abs(tQuantile975(df) - table) < 0.001, `t(${df}) = ${tQuantile975(df).toFixed(4)}, the table says ${table}`)
  t.ok(Math.abs(tQuantile975(100_000) - 1.96) < 0.001)
  t.ok(Number.isNaN(tQuantile975(0)), 'no interval from one value')
})

t.test('a 95% interval for the mean of runs: mean ± t(n-1) × sd / √n', async (t) => {
  const i = meanInterval([90, 100, 110])
  t.equal(i.n, 3)
  t.equal(i.mean, 100)
  t.equal(i.sd, 10)
  t.ok(Math.abs((i.halfWidth as number) - 4.303 * 10 / Math.sqrt(3)) < 1e-9, `half-width ${i.halfWidth}`)
  t.ok(Math.abs((i.relative as number) - 0.24843) < 1e-4, '±24.8% of the mean')
  t.equal(i.low, 100 - (i.halfWidth as number))
  t.same(meanInterval([7]), { n: 1, mean: 7, sd: null, halfWidth: null, low: null, high: null, relative: null }, 'one run: a value, no interval')
  t.equal(meanInterval([5, Number.NaN, 7]).n, 2, 'what was not measured is left out')
  t.match(meanInterval([7, 7, 7], 1), { mean: 7, sd: 0, halfWidth: 0.5, low: 6.5, high: 7.5 }, 'values read to whole steps: never surer than half a step')
  t.equal(meanInterval([6, 8, 7], 1).halfWidth, 4.303 / Math.sqrt(3), 'a wider spread decides')
})

t.test('two intervals overlap or not; without intervals, it cannot be said', async (t) => {
  t.equal(intervalsOverlap(meanInterval([90, 100, 110]), meanInterval([120, 130, 140])), true, '[75, 125] and [105, 155]')
  t.equal(intervalsOverlap(meanInterval([99, 100, 101]), meanInterval([109, 110, 111])), false, '[97.5, 102.5] and [107.5, 112.5]')
  t.equal(intervalsOverlap(meanInterval([100]), meanInterval([110, 111])), null)
})

t.test('the trend: the least-squares slope per round, as a share of the mean', async (t) => {
  t.ok(Math.abs((trendPerStep([100, 110, 120]) as number) - 10 / 110) < 1e-12, 'climbing 10 a round around a mean of 110')
  t.equal(trendPerStep([100, 100, 100]), 0)
  t.ok((trendPerStep([120, 100, 110]) as number) < 0)
  t.equal(trendPerStep([100]), null)
})
