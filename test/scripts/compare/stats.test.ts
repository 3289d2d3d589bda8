import t from 'tap'
import { mean, median, percentile, Samples, spread } from '../../../scripts/compare/stats.ts'

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
