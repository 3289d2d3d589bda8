import t, { type Test } from 'tap'
import { clientAborts, upstreamResets } from '../../scripts/faults/balancer-churn.ts'
import { COUNTS_FDS, describeRun } from '../helpers/fault-report.ts'

// Client aborts and upstream resets by the thousand against a real balancer process, held to
// these bounds (not to the scenario's own verdicts): it survives, nobody hangs, and its sockets
// and heap come back to where they were.
const CHURN = 1000
// Sockets the OS may hold a moment longer: room, not a leak.
const FD_SLACK = 4
// A leak of even a few hundred bytes per request would show as megabytes over a thousand.
const HEAP_SLACK_MB = 4

function fdsCameBack (t: Test, what: string, before: number, after: number): void {
  if (!COUNTS_FDS) return
  t.ok(Number.isFinite(before) && Number.isFinite(after), `${what}: open file descriptors counted (${before} -> ${after})`)
  t.ok(after <= before + FD_SLACK, `${what}: open file descriptors back within ${FD_SLACK} of where they were (${before} -> ${after})`)
}

t.test('a thousand clients hanging up mid-request: the balancer\'s sockets and heap come back', async (t) => {
  const result = await clientAborts({ aborts: CHURN })
  describeRun(t, result)
  const f = result.figures
  t.equal(f.aborts, CHURN)
  t.ok(f.allRunning, 'every process is still running')
  t.ok(f.answersAfter, 'and the balancer still answers')
  fdsCameBack(t, 'the balancer', f.balancer.before.fds, f.balancer.after.fds)
  fdsCameBack(t, 'the app servers', f.serversFds.before, f.serversFds.after)
  t.ok(f.balancer.after.heapMb - f.balancer.before.heapMb < HEAP_SLACK_MB, `the balancer's heap back within ${HEAP_SLACK_MB} MB (${f.balancer.before.heapMb.toFixed(1)} -> ${f.balancer.after.heapMb.toFixed(1)} MB)`)
})

t.test('a thousand upstream resets: no client hangs, the balancer\'s sockets and heap come back', async (t) => {
  const result = await upstreamResets({ resets: CHURN })
  describeRun(t, result)
  const f = result.figures
  t.ok(f.resets >= CHURN, `the upstreams reset ${f.resets} connections`)
  t.equal(f.outcomes['0 timeout'] ?? 0, 0, 'every client got an answer or a cut connection: none was left hanging')
  t.notOk('500' in f.outcomes, 'and no answer was a 500')
  t.ok(f.balancerRunning, 'the balancer is still running')
  t.equal(f.statsStatus, 200, 'and answers')
  fdsCameBack(t, 'the balancer', f.balancer.before.fds, f.balancer.after.fds)
  t.ok(f.balancer.after.heapMb - f.balancer.before.heapMb < HEAP_SLACK_MB, `its heap back within ${HEAP_SLACK_MB} MB (${f.balancer.before.heapMb.toFixed(1)} -> ${f.balancer.after.heapMb.toFixed(1)} MB)`)
})
