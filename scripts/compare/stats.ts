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
