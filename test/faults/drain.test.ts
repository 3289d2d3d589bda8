import t from 'tap'
import { sigtermDrain } from '../../scripts/faults/drain.ts'
import { describeRun, statusesOtherThan } from '../helpers/fault-report.ts'

// SIGTERM with requests in flight, held to these bounds (not to the scenario's own verdicts).
const IN_FLIGHT = 4
// The requests in flight are finished a moment after SIGTERM; the launcher would SIGKILL at 15 s.
const EXIT_MS = 5000

// The balancer on two threads (BALANCER_THREADS=2) too: the in-flight logins' connections land on both.
for (const [target, balancerThreads] of [['server', 1], ['balancer', 1], ['balancer', 2]] as const) {
  const what = target === 'server' ? 'an app server' : `the balancer${balancerThreads > 1 ? ` on ${balancerThreads} threads` : ''}`
  t.test(`SIGTERM to ${what} drains its requests in flight before it exits${target === 'server' ? ', and the balancer loses no GET' : ''}`, async (t) => {
    const result = await sigtermDrain({ target, inFlight: IN_FLIGHT, balancerThreads })
    describeRun(t, result)
    const f = result.figures
    t.equal(f.inFlight, IN_FLIGHT)
    t.ok(f.runningAfterSigterm, 'it is still running 500 ms after SIGTERM, waiting for them')
    t.ok(f.refusedNewConnection, 'meanwhile it refuses new connections')
    t.equal(f.completed, IN_FLIGHT, `all ${IN_FLIGHT} are answered 200`)
    t.ok(f.drainMs < EXIT_MS, `then it exits: ${Math.round(f.drainMs)} ms after SIGTERM, under ${EXIT_MS}`)
    if (target === 'server') {
      t.ok((f.loadStatuses[200] ?? 0) > 0, 'GETs went through the balancer meanwhile')
      t.same(statusesOtherThan(f.loadStatuses, [200]), [], 'and every one was answered 200: the balancer routed around the draining server')
    }
  })
}
