import t from 'tap'
import { redisFailover, type RedisFailoverOptions } from '../../scripts/faults/redis-failover.ts'
import { FAILOVER_WITHIN_MS } from '../../scripts/lib/redis-ha.ts'
import { describeRun, ms } from '../helpers/fault-report.ts'

// The Redis primary of a --redis-ha cluster killed under load, with logins (redis mode) or
// logouts (jwt mode, JWT_REVOCATION=redis) made while the replica was cut off: the scenario
// `npm run faults -- --only primary` reports, with a lighter load, held to these bounds (not to
// the scenario's own verdicts).
const WRITES = 8
const CONCURRENCY = 10
/** Each request's bound: far above the 500 ms Redis command timeout, for a busy 2-core machine. */
const BOUND_MS = 5000
/** "Requests succeed again within the failover time plus 1 s". */
const RECOVERY_MS = FAILOVER_WITHIN_MS + 1000

const cases: Array<[string, RedisFailoverOptions]> = [
  ['redis mode, no WAIT: the logins the replica never got are answered 200 and lost', { mode: 'redis', wait: false }],
  ['redis mode, REDIS_WAIT_REPLICAS=1: they are refused by name instead', { mode: 'redis', wait: true }],
  ['jwt mode with JWT_REVOCATION=redis, no WAIT: the revoked tokens are accepted again', { mode: 'jwt', wait: false }],
  ['jwt mode with JWT_REVOCATION=redis, REDIS_WAIT_REPLICAS=1: the logouts are refused by name instead', { mode: 'jwt', wait: true }]
]

for (const [name, options] of cases) {
  t.test(name, { timeout: 90_000 }, async (t) => {
    const result = await redisFailover({ ...options, writes: WRITES, concurrency: CONCURRENCY, boundMs: BOUND_MS })
    describeRun(t, result)
    const r = result.figures.report
    const jwt = options.mode === 'jwt'
    const statuses = jwt ? r.revocations.logoutStatuses : r.sessions.loginStatuses
    const done = jwt ? r.revocations.revoked : r.sessions.created
    const lost = jwt ? r.revocations.lost : r.sessions.lost

    t.same(Object.keys(r.reads.byStatus).filter((s) => s !== '200' && s !== '503'), [], 'every read answered 200 or 503: no 500, no timeout, no dropped connection')
    t.same(Object.keys(r.errors).filter((e) => e !== 'session_store_unavailable'), [], 'every failed read is a named session_store_unavailable')
    t.ok(r.reads.slowestMs < BOUND_MS, `no read took ${BOUND_MS} ms (slowest ${ms(r.reads.slowestMs)})`)
    t.ok(r.unavailable > 0, 'the kill was felt: some reads got a 503')
    t.ok(r.reads.afterKill > 50, `the load went on after the kill (${r.reads.afterKill} reads)`)
    t.not(r.newPrimaryPort, r.killedPort, 'the Sentinels promoted the replica')
    t.ok(r.recoveredAfterMs <= RECOVERY_MS, `reads succeed again within ${RECOVERY_MS} ms of the kill (${ms(r.recoveredAfterMs)})`)
    t.equal(Object.values(statuses).reduce((a, b) => a + b, 0), WRITES, `all ${WRITES} ${jwt ? 'logouts' : 'logins'} answered`)
    const allowed = new RegExp(`^(${jwt ? 204 : 200}|503 session_store_(unavailable|not_replicated))$`)
    t.same(Object.keys(statuses).filter((s) => !allowed.test(s)), [], `each ${jwt ? 'logout' : 'login'} answered ${jwt ? 204 : 200} or a named 503`)
    if (options.wait) {
      t.equal(lost, 0, 'no write answered as done was lost')
      t.ok((statuses['503 session_store_not_replicated'] ?? 0) > 0, 'writes the replica could not acknowledge were refused by name')
    } else {
      t.ok(done > 0, 'writes were answered as done while the replica was cut off')
      t.equal(lost, done, 'asynchronous replication: every one of them is gone after the failover')
    }
    t.equal(result.checks.filter((c) => !c.ok).map((c) => c.name).join('; '), '', 'and the scenario found every bound held')
  })
}
