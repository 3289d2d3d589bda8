import t from 'tap'
import { postgresOutage, type PostgresOutageOptions } from '../../scripts/faults/postgres-outage.ts'
import { describeRun, ms, statusesOtherThan } from '../helpers/fault-report.ts'

// The cluster's PostgreSQL taken away under load and brought back, held to the contract's bounds,
// written here (not to the scenario's own verdicts): a 503 within a second on every server while
// the database is down or frozen, never a hang, a 401 or a 500; service back soon after, by
// itself; every committed session kept.
const SESSIONS = 12
const DETECT_MS = 1000
const ANSWER_MS = 1000
const RECOVER_MS = 2000

const cases: Array<[string, PostgresOutageOptions]> = [
  ['postgres mode: PostgreSQL killed (SIGKILL, every backend) under load, restarted on its data directory', { how: 'kill', outageMs: 1500, connections: 4, sessions: SESSIONS }],
  ['postgres mode: PostgreSQL frozen (SIGSTOP, every backend) under load, then thawed', { how: 'freeze', outageMs: 1500, connections: 4, sessions: SESSIONS }]
]

for (const [name, options] of cases) {
  t.test(name, async (t) => {
    const result = await postgresOutage(options)
    describeRun(t, result)
    const f = result.figures
    t.same(statusesOtherThan(f.statuses.before, [200]), [], 'before the outage every answer is a 200')
    t.ok(f.detectMs !== undefined && f.detectMs < DETECT_MS, `the first 503 comes within ${DETECT_MS} ms of PostgreSQL going away (${ms(f.detectMs)})`)
    t.ok((f.statuses.during[503] ?? 0) > 0, `requests during the outage are answered 503 (${f.statuses.during[503] ?? 0})`)
    t.same(statusesOtherThan(f.statuses.during, [200, 503]), [], 'while PostgreSQL is away, a 503 (or a 200 begun before): no 401, no 500, no request left without an answer')
    t.ok(f.slowestDuringMs < ANSWER_MS, `every request overlapping the outage is answered within ${ANSWER_MS} ms (slowest ${Math.round(f.slowestDuringMs)} ms)`)
    t.ok(f.recoverMs !== undefined && f.recoverMs < RECOVER_MS, `service resumes within ${RECOVER_MS} ms of PostgreSQL returning (${ms(f.recoverMs)})`)
    t.same(statusesOtherThan(f.statuses.recovering, [200, 503]), [], 'while it resumes, a 503 at worst')
    t.same(statusesOtherThan(f.statuses.recovered, [200]), [], 'then every answer is a 200')
    t.ok((f.statuses.recovered[200] ?? 0) > 0, 'and there are some')
    t.equal(`${f.sessionsKept} of ${f.sessions}`, `${SESSIONS} of ${SESSIONS}`, 'every session from before the outage still works')
    t.ok(f.allRunning, 'no process died')
    t.same(f.storeHealth, ['up', 'up', 'up'], 'every server reports its store up again')
  })
}
