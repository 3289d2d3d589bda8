import type { ModeResult } from './run-compare.ts'
import { intervalsOverlap, type Interval } from './stats.ts'

/**
 * Which differences between modes are larger than the noise. With --runs R (2 or more) each
 * figure of each mode has a 95% interval over its runs (stats.ts meanInterval); a difference is
 * established when the two modes' intervals do not overlap. That is the rule the HTML report's
 * error bars show, and a cautious one: two intervals that just touch correspond to a two-sample
 * test at well under the 5% level, so a real but small difference can be left "not established",
 * never the other way round more often than about once in a few hundred pairs.
 *
 * With one run there is nothing to measure the noise between runs by. For req/s the run's
 * one-second windows still give an interval, but windows of one run share its conditions (the
 * same cluster, the same moment on the machine), so it understates the noise: a difference inside
 * it is certainly not established, one outside it still is not (basis 'windows').
 */

export type Figure = 'rps' | 'p50' | 'p99' | 'authP50' | 'cpuUsPerRequest'

export const FIGURES: ReadonlyArray<{ figure: Figure, label: string }> = [
  { figure: 'rps', label: 'req/s' },
  { figure: 'p50', label: 'p50 ms' },
  { figure: 'p99', label: 'p99 ms' },
  { figure: 'authP50', label: 'auth µs p50' },
  { figure: 'cpuUsPerRequest', label: 'server CPU µs/req' }
]

export interface Difference {
  /** The two modes' names, in the report's order. */
  a: string
  b: string
  figure: Figure
  /** (b - a) / a, of their means; null when either is missing or a is 0. */
  change: number | null
  /** What the intervals were made of: the runs, one run's one-second windows (req/s only), or nothing. */
  basis: 'runs' | 'windows' | null
  /** Whether the two intervals overlap; null when there are none. */
  overlap: boolean | null
  /** Larger than the noise between runs: intervals over two or more runs each that do not overlap. */
  established: boolean
}

function intervalOf (r: ModeResult, figure: Figure): Interval | null {
  // Reports written before intervals existed (--from an older JSON) have none.
  const c = r.confidence as ModeResult['confidence'] | undefined
  if (c === undefined) return null
  return figure === 'authP50' ? c.authP50 : c[figure]
}

export function differences (results: ModeResult[]): Difference[] {
  const out: Difference[] = []
  for (let i = 0; i < results.length; i++) {
    for (let j = i + 1; j < results.length; j++) {
      const a = results[i] as ModeResult
      const b = results[j] as ModeResult
      for (const { figure } of FIGURES) {
        let ia = intervalOf(a, figure)
        let ib = intervalOf(b, figure)
        let basis: Difference['basis'] = ia?.halfWidth != null && ib?.halfWidth != null ? 'runs' : null
        if (basis === null && figure === 'rps' && a.runs === 1 && b.runs === 1 && a.rpsWithinRun?.halfWidth != null && b.rpsWithinRun?.halfWidth != null) {
          ia = a.rpsWithinRun
          ib = b.rpsWithinRun
          basis = 'windows'
        }
        const overlap = basis === null || ia === null || ib === null ? null : intervalsOverlap(ia, ib)
        const ma = ia?.mean
        const mb = ib?.mean
        out.push({
          a: a.mode,
          b: b.mode,
          figure,
          change: ma === undefined || mb === undefined || !Number.isFinite(ma) || !Number.isFinite(mb) || ma === 0 ? null : (mb - ma) / ma,
          basis,
          overlap,
          established: basis === 'runs' && overlap === false
        })
      }
    }
  }
  return out
}
