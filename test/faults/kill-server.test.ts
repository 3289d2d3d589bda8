import t from 'tap'
import { killServer } from '../../scripts/faults/kill-server.ts'
import { describeRun, ms, statusesOtherThan } from '../helpers/fault-report.ts'

// One of three app servers killed under load, then started again: the scenario `npm run faults`
// reports, here with a lighter load, held to these bounds (not to the scenario's own verdicts).
const CONNECTIONS = 4
const SESSIONS = 9
// A killed server refuses connections, which marks it down at once; the probe runs every second.
const DETECT_MS = 1000
// Back once a probe finds it answering, a second apart, on a machine busy with other suites.
const REJOIN_MS = 5000

for (const mode of ['jwt', 'redis', 'memory'] as const) {
  t.test(`${mode} mode: kill a server under load, restart it`, async (t) => {
    const result = await killServer({ mode, connections: CONNECTIONS, sessions: SESSIONS, healthTimeoutMs: 2000 })
    describeRun(t, result)
    const f = result.figures
    t.ok(result.requests >= 200, `the load ran (${result.requests} requests)`)
    t.ok(f.detectMs !== undefined && f.detectMs < DETECT_MS, `the balancer marks the killed server down within ${DETECT_MS} ms (${ms(f.detectMs)})`)
    t.equal(f.requestsWhileOut, 0, 'and sends it no request while it is down')
    t.ok(f.rejoinMs !== undefined && f.rejoinMs < REJOIN_MS, `the restarted server answers requests again within ${REJOIN_MS} ms (${ms(f.rejoinMs)})`)
    if (mode === 'memory') {
      // Its 401s (unknown_session) are the demo, not a failure: anything else is.
      t.same(statusesOtherThan(f.statuses, [200, 401]), [], 'every answer is a 200 or a 401: no 5xx, none missing')
      t.equal(f.sessionsHeld, SESSIONS / 3, `round robin gave the killed server ${SESSIONS / 3} of the ${SESSIONS} sessions`)
      t.equal(f.sessionsLost, f.sessionsHeld, 'and every one of them died with it')
    } else {
      t.equal(f.failedOnceOut, 0, 'once it is out, every GET is answered 200 (a failed one is retried on another server)')
      t.ok(f.failedBeforeOut <= CONNECTIONS, `at most the ${CONNECTIONS} requests in flight at the kill fail (${f.failedBeforeOut})`)
      t.same(statusesOtherThan(f.statuses, [200, 502, 0]), [], 'and those get a 502 or a cut connection, never a 401 or a 500')
    }
  })
}
