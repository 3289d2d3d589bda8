/** Plain statistics for measured numbers: no library, so what is computed is plain to see. */

/** Nearest-rank percentile (p from 0 to 100) of values sorted ascending; NaN for none. */
export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number
}

export function median (values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50)
}

export function mean (values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN
  let sum = 0
  for (let i = 0; i < values.length; i++) sum += values[i] as number
  return sum / values.length
}

/** The median of repeated runs, and how far the runs were from it, as min and max and as a fraction of the median. */
export interface Spread { median: number, min: number, max: number, relative: number }

export function spread (values: number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, relative: Number.NaN }
  const m = median(finite)
  const min = Math.min(...finite)
  const max = Math.max(...finite)
  return { median: m, min, max, relative: m === 0 ? 0 : (max - min) / 2 / Math.abs(m) }
}

/** A growable array of doubles: latencies of a run, without boxing every number. */
export class Samples {
  #data = new Float64Array(4096)
  #length = 0
  readonly #cap: number

  constructor (cap = 5_000_000) {
    this.#cap = cap
  }

  get length (): number { return this.#length }

  push (value: number): void {
    if (this.#length === this.#data.length) {
      if (this.#length >= this.#cap) return
      const bigger = new Float64Array(Math.min(this.#cap, this.#data.length * 2))
      bigger.set(this.#data)
      this.#data = bigger
    }
    this.#data[this.#length++] = value
  }

  sorted (): Float64Array {
    return this.#data.slice(0, this.#length).sort()
  }
}

// Student's t, two-sided 95%: the t with 2.5% of the distribution beyond it on each side, for 1
// to 30 degrees of freedom (any statistics table); beyond 30 the Cornish-Fisher expansion around
// the normal's 1.96 (Abramowitz & Stegun 26.7.5), within 0.001 of the table there.
const T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
  2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
const Z_975 = 1.959964

export function tQuantile975 (degreesOfFreedom: number): number {
  const df = Math.floor(degreesOfFreedom)
  if (!(df >= 1)) return Number.NaN
  if (df <= T_975.length) return T_975[df - 1] as number
  const z = Z_975
  const g1 = (z ** 3 + z) / 4
  const g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
  const g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
  return z + g1 / df + g2 / df ** 2 + g3 / df ** 3
}

/**
 * A 95% confidence interval for the mean of repeated measurements, from Student's t: the mean
 * ± t(n-1) × sd / √n. Said plainly: if the runs were repeated many times, 95 in 100 intervals
 * made this way would hold the true mean. It assumes the runs are independent; windows of one
 * run are not (they share the run's conditions), so an interval over them understates the noise.
 * With fewer than two values there is no interval: sd, halfWidth, low, high and relative are null.
 * `resolution` is the step the values come in (1 for whole microseconds): however alike the runs,
 * a value read to whole steps is uncertain by half a step, so the half-width is never less.
 */
export interface Interval {
  n: number
  mean: number
  sd: number | null
  halfWidth: number | null
  low: number | null
  high: number | null
  /** halfWidth / |mean|: the "±3.1%". */
  relative: number | null
}

export function meanInterval (values: number[], resolution = 0): Interval {
  const finite = values.filter((v) => Number.isFinite(v))
  const n = finite.length
  const m = mean(finite)
  if (n < 2) return { n, mean: m, sd: null, halfWidth: null, low: null, high: null, relative: null }
  const sd = Math.sqrt(finite.reduce((s, v) => s + (v - m) ** 2, 0) / (n - 1))
  const halfWidth = Math.max(tQuantile975(n - 1) * sd / Math.sqrt(n), resolution / 2)
  return { n, mean: m, sd, halfWidth, low: m - halfWidth, high: m + halfWidth, relative: m === 0 ? null : halfWidth / Math.abs(m) }
}

/**
 * Whether two intervals share any value. When two 95% intervals do not overlap, the difference
 * between the means is larger than the noise the runs showed (it corresponds to a two-sample test
 * at well under the 5% level, so it errs towards "not established"); null when either has no interval.
 */
export function intervalsOverlap (a: Interval, b: Interval): boolean | null {
  if (a.low === null || a.high === null || b.low === null || b.high === null) return null
  return a.low <= b.high && b.low <= a.high
}

/**
 * The least-squares slope of values taken one step apart (rounds), as a share of their mean per
 * step: +0.05 is a climb of 5% of the mean from one round to the next. null for fewer than two.
 */
export function trendPerStep (values: number[]): number | null {
  const n = values.length
  if (n < 2 || values.some((v) => !Number.isFinite(v))) return null
  const m = mean(values)
  const xMean = (n - 1) / 2
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (i - xMean) * ((values[i] as number) - m)
    den += (i - xMean) ** 2
  }
  return m === 0 ? null : num / den / Math.abs(m)
}
