/** How the reports write numbers and tables: the text report and the HTML one alike. */

import type { ModeResult } from './run-compare.ts'

/** A table as data: the text report lays it out in columns, the HTML one as a <table>. */
export interface TableData {
  header: string[]
  rows: string[][]
  /** How many leading columns are names (left-aligned); the rest are numbers. */
  leftColumns: number
}

/** Columns of text, numbers right-aligned, with a rule under the header. */
export function table (header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells
    .map((c, i) => i < leftColumns ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))
    .join('  ').trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

export const int = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'
export const dec = (n: number, digits = 1): string => Number.isFinite(n) ? n.toFixed(digits) : '-'
export const pct = (n: number): string => Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : '-'

/** Microseconds: one decimal below 100, whole numbers above. */
export const us = (n: number): string => n < 100 ? dec(n, 1) : int(n)

/** " ±3.1%": an interval's half-width as a share of its mean; nothing when there is no interval (one run). */
export function plusMinus (interval: { relative: number | null } | null | undefined): string {
  const r = interval?.relative
  return r === null || r === undefined || !Number.isFinite(r) ? '' : ` ±${(r * 100).toFixed(r < 0.1 ? 1 : 0)}%`
}

/** "+12.3%": a signed relative change; from twice up, the ratio ("×45.0") reads better than "+4400%". */
export function signedPct (change: number | null): string {
  if (change === null || !Number.isFinite(change)) return '-'
  if (change >= 1) return `×${(1 + change).toFixed(1)}`
  return `${change >= 0 ? '+' : '−'}${Math.abs(change * 100).toFixed(1)}%`
}

/** "4.2 to 9.0" or, when both ends are the same, "4.2". */
export function range (values: number[], format: (n: number) => string): string {
  const low = format(Math.min(...values))
  const high = format(Math.max(...values))
  return low === high ? low : `${low} to ${high}`
}

/**
 * The typical auth step: the median of the Server-Timing values when the responses carried
 * them, else the mean from /metrics. On a busy machine the mean is pulled far up by the few
 * requests whose process was descheduled mid-step; the median is what a request usually costs.
 * Both are taken under the run's whole load (--connections at once), and say so: the walkthrough
 * times the same Server-Timing with a dozen requests in flight (scripts/lib/auth-step-timing.ts),
 * and a Redis lookup's time grows with the requests waiting beside it, a signature check's does not.
 */
export function typicalAuthUs (r: ModeResult): { us: number, what: string } {
  return r.serverTimingAuthUs !== null ? { us: r.serverTimingAuthUs.p50, what: 'median under load' } : { us: r.authUsPerRequest, what: 'mean under load' }
}
