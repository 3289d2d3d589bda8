import t from 'tap'
import { invalidationCut } from '../../scripts/faults/invalidation-cut.ts'
import { sessionCacheOutage } from '../../scripts/faults/session-cache-outage.ts'
import { describeRun, ms, statusesOtherThan } from '../helpers/fault-report.ts'

// postgres mode's caches broken under load, held to bounds written here (not to the scenarios'
// own verdicts): the shared cache gone costs the database its reads and no request anything; the
// local caches' NOTIFY channel cut never lets a logged-out session through, at the price of the
// database taking every read until the channel is back.
const ANSWER_MS = 1000
const RECOVER_MS = 2000
/** A read of a logged-out session may be accepted only if it began within this of the logout's answer. */
const REACH_MS = 100

t.test('postgres+redis-cache: the cache\'s Redis killed under load, started again empty: not one 503, the database takes the reads', async (t) => {
  const result = await sessionCacheOutage({ outageMs: 1500, connections: 4, sessions: 12 })
  describeRun(t, result)
  const f = result.figures
  for (const phase of ['before', 'during', 'after'] as const) t.same(statusesOtherThan(f.statuses[phase], [200]), [], `${phase} the outage every answer is a 200`)
  t.ok((f.statuses.during[200] ?? 0) > 0, `and there were requests during it (${f.statuses.during[200] ?? 0})`)
  // The requests' own statements are held to the bound; the keep-alive pings are a cost per
  // second, not per request (test/cluster/session-cache.test.ts holds them the same way), and the
  // figure with them is held to the bound where there are requests enough for it to mean that.
  for (const phase of ['before', 'after'] as const) {
    t.ok(f.pingsPerServerSecond[phase] <= 4, `${phase}: ${f.pingsPerServerSecond[phase].toFixed(1)} keep-alive pings a second per server, at most 4`)
  }
  t.ok(f.sessionStatementsPerRequest.before < 0.1, `before: ${f.sessionStatementsPerRequest.before.toFixed(3)} database statements per request besides the pings (${f.statementsPerRequest.before.toFixed(3)} with them, at ${f.requests.before} requests)`)
  if (f.requests.before >= 1000) t.ok(f.statementsPerRequest.before < 0.1, `before, pings included: ${f.statementsPerRequest.before.toFixed(3)} per request`)
  t.ok(f.statementsPerRequest.during > 0.9, `during: ${f.statementsPerRequest.during.toFixed(3)}: the database took the reads`)
  // The window opens with the counters read just before the kill: a read or two may still hit.
  t.ok(f.hitRatio.during < 0.05, `next to none answered from the cache while it was gone (${f.lookupsDuring.hit} hits)`)
  t.ok(f.slowestDuringMs < ANSWER_MS, `every request during it answered within ${ANSWER_MS} ms (slowest ${Math.round(f.slowestDuringMs)} ms)`)
  t.ok(f.recoverMs !== undefined && f.recoverMs < RECOVER_MS, `the cache serves again within ${RECOVER_MS} ms of Redis returning (${ms(f.recoverMs)})`)
  t.ok(f.sessionStatementsPerRequest.after < 0.2, `after: ${f.sessionStatementsPerRequest.after.toFixed(3)} statements per request besides the pings, refilling (${f.statementsPerRequest.after.toFixed(3)} with them, at ${f.requests.after} requests)`)
  if (f.requests.after >= 1000) t.ok(f.statementsPerRequest.after < 0.2, `after, pings included: ${f.statementsPerRequest.after.toFixed(3)} per request`)
  t.ok(f.allRunning, 'no process died')
  t.same(f.storeHealth, ['up', 'up', 'up'])
})

t.test('postgres+local-cache: every LISTEN connection cut under load, logouts during the cut: none accepted after, the caches off meanwhile, dropped and back after', async (t) => {
  const result = await invalidationCut({ cutMs: 1200, connections: 4, sessions: 12 })
  describeRun(t, result)
  const f = result.figures
  t.ok(f.terminations >= 3, `the channel of each server was cut (${f.terminations} terminations)`)
  t.same(f.logouts, { 204: 4 }, 'the logouts during the cut were recorded')
  t.ok(f.readsAfterLogout > 0, `the logged-out sessions were read on after their logout (${f.readsAfterLogout} reads begun ${REACH_MS} ms or more after it)`)
  t.equal(f.acceptedAfterLogout, 0, 'and not one of those reads was accepted, during the cut or after it')
  for (const phase of ['before', 'during', 'after'] as const) t.same(statusesOtherThan(f.statuses[phase], [200, 401]), [], `${phase} the cut: a 200, or a 401 for a logged-out session; no 503`)
  t.ok(f.statementsPerRequest.during > 0.5, `during the cut the database took the reads (${f.statementsPerRequest.during.toFixed(3)} statements per request)`)
  t.ok(f.lookups.during.bypass > f.lookups.during.hit, `the caches were bypassed (${f.lookups.during.bypass} reads) more than used (${f.lookups.during.hit})`)
  t.ok(f.relistenMs !== undefined && f.relistenMs < RECOVER_MS, `every server listens again within ${RECOVER_MS} ms of the cut's end (${ms(f.relistenMs)})`)
  t.ok(f.flushes >= 3, `each dropped its whole cache on listening again (${f.flushes} drops)`)
  t.ok(f.lookups.after.hit > f.liveReadsAfter / 2, `then the caches answer the live sessions again (${f.lookups.after.hit} hits for ${f.liveReadsAfter} reads of them)`)
  t.ok(f.allRunning, 'no process died')
})
