import type { Test } from 'tap'
import type { StoreOutageFigures } from '../../scripts/faults/store-outage.ts'
import type { FaultResult } from '../../scripts/faults/support.ts'
import { describeRun, ms, statusesOtherThan } from './fault-report.ts'

/**
 * The contract's bounds for a session store taken away under load and brought back, whichever
 * store it is (Redis, PostgreSQL; scripts/faults/store-outage.ts measures both the same way):
 * a 503 within a second on every server while the store is down or frozen, never a hang, a 401
 * or a 500; service back soon after, by itself; every session from before it kept.
 */
export const DETECT_MS = 1000
export const ANSWER_MS = 1000
export const RECOVER_MS = 2000

export function checkStoreOutage (t: Test, result: FaultResult<StoreOutageFigures>, store: string, sessions: number): void {
  describeRun(t, result)
  const f = result.figures
  t.same(statusesOtherThan(f.statuses.before, [200]), [], 'before the outage every answer is a 200')
  t.ok(f.detectMs !== undefined && f.detectMs < DETECT_MS, `the first 503 comes within ${DETECT_MS} ms of ${store} going away (${ms(f.detectMs)})`)
  t.ok((f.statuses.during[503] ?? 0) > 0, `requests during the outage are answered 503 (${f.statuses.during[503] ?? 0})`)
  t.same(statusesOtherThan(f.statuses.during, [200, 503]), [], `while ${store} is away, a 503 (or a 200 begun before): no 401, no 500, no request left without an answer`)
  t.ok(f.slowestDuringMs < ANSWER_MS, `every request overlapping the outage is answered within ${ANSWER_MS} ms (slowest ${Math.round(f.slowestDuringMs)} ms)`)
  t.ok(f.recoverMs !== undefined && f.recoverMs < RECOVER_MS, `service resumes within ${RECOVER_MS} ms of ${store} returning (${ms(f.recoverMs)})`)
  t.same(statusesOtherThan(f.statuses.recovering, [200, 503]), [], 'while it resumes, a 503 at worst')
  t.same(statusesOtherThan(f.statuses.recovered, [200]), [], 'then every answer is a 200')
  t.ok((f.statuses.recovered[200] ?? 0) > 0, 'and there are some')
  t.equal(`${f.sessionsKept} of ${f.sessions}`, `${sessions} of ${sessions}`, 'every session from before the outage still works')
  t.ok(f.allRunning, 'no process died')
  t.same(f.storeHealth, ['up', 'up', 'up'], 'every server reports its store up again')
}
