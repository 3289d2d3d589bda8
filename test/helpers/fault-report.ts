import { existsSync } from 'node:fs'
import type { Test } from 'tap'
import type { FaultResult } from '../../scripts/faults/support.ts'

/**
 * Prints what a fault scenario measured, for the record: the tests hold its raw `figures` to
 * bounds of their own, not to the verdicts (`checks`) the scenario reached about itself.
 */
export function describeRun (t: Test, result: FaultResult): void {
  t.comment(`${result.fault} [${result.mode}]: ${result.requests} requests; ${result.notes}`)
  t.comment(`figures: ${JSON.stringify(result.figures)}`)
}

/** The statuses in a count by status that are not among `allowed`, e.g. ['500'] or []. */
export function statusesOtherThan (counts: Record<number, number>, allowed: number[]): string[] {
  return Object.keys(counts).filter((status) => !allowed.includes(Number(status)))
}

/** Linux: where the scenarios count a process's open file descriptors (/proc/PID/fd). */
export const COUNTS_FDS = existsSync('/proc/self/fd')

/** A duration for a message: `412 ms`, or `none` when it was never measured. */
export function ms (value: number | undefined): string {
  return value === undefined ? 'none' : `${Math.round(value)} ms`
}
