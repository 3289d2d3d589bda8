import type { Test } from 'tap'
import type { FaultResult } from '../../scripts/faults/support.ts'

/** Asserts every bound a fault scenario checked, with the figures in the messages. */
export function assertBounds (t: Test, result: FaultResult): void {
  const figures = `${result.requests} requests, ${result.failed} failed, detect ${fmt(result.detectMs)}, recover ${fmt(result.recoverMs)}; ${result.notes}`
  t.comment(`${result.fault} [${result.mode}]: ${figures}`)
  for (const check of result.checks) t.ok(check.ok, check.name, { figures })
  t.equal(result.failed, 0, 'no request failed', { figures })
}

function fmt (ms: number | undefined): string {
  return ms === undefined ? '-' : `${Math.round(ms)} ms`
}
