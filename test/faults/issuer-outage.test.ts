import t from 'tap'
import { issuerOutage } from '../../scripts/faults/issuer-outage.ts'
import { describeRun, ms, statusesOtherThan } from '../helpers/fault-report.ts'

// The issuer (JWT_SIGNING=eddsa) taken away under load, held to bounds written here, not to the
// scenario's own verdicts: reads go on from the app servers' cached keys for as long as the
// access tokens live (60 s here, longer than the outage); logins and refreshes are refused at
// once, never hang; both back soon after it returns, with the refresh tokens Redis kept.
const REFUSE_MS = 1000
const RECOVER_MS = 2000
const UNKNOWN_KID_MS = 1500
// Health checks every 1000 ms, 500 ms each, two failures to take an upstream out, on a busy machine.
const MARKED_DOWN_MS = 4000

t.test('the issuer killed under load: reads go on, logins and refreshes refused within a second, back when it restarts', async (t) => {
  const result = await issuerOutage({ how: 'kill', outageMs: 3000 })
  describeRun(t, result)
  const f = result.figures
  t.ok(f.outageMs < f.accessTtlSeconds * 1000, 'the outage is shorter than the access tokens\' life')
  t.same(statusesOtherThan(f.reads.before, [200]), [])
  t.same(statusesOtherThan(f.reads.during, [200]), [], 'while the issuer is dead, every read with a token from before is a 200')
  t.ok((f.reads.during[200] ?? 0) > 100, `and there were plenty (${f.reads.during[200] ?? 0})`)
  t.same(statusesOtherThan(f.reads.after, [200]), [], 'and after')
  t.ok(f.detectMs !== undefined && f.detectMs < REFUSE_MS, `the first login or refresh refused within ${REFUSE_MS} ms (${ms(f.detectMs)})`)
  t.same(statusesOtherThan(f.issuerCalls.during, [200, 502, 503]), [], 'refused with the balancer\'s 503 (502 for one it sent before it knew), never a 500 or a hang')
  t.ok((f.issuerCalls.during[503] ?? 0) > 0, `mostly 503 (${f.issuerCalls.during[503] ?? 0})`)
  t.ok(f.slowestCallDuringMs < REFUSE_MS, `each answered within ${REFUSE_MS} ms (slowest ${ms(f.slowestCallDuringMs)})`)
  t.ok(f.recoverMs !== undefined && f.recoverMs < RECOVER_MS, `logins and refreshes work again within ${RECOVER_MS} ms of the restart (${ms(f.recoverMs)})`)
  t.equal(`${f.refreshTokensKept} of ${f.refreshTokens}`, '3 of 3', 'refresh tokens from before still work')
  t.ok(f.jwksFetchesFailed > 0, `the app servers' JWKS fetches failed meanwhile (${f.jwksFetchesFailed})`)
  t.same(f.jwksDuring, ['down', 'down', 'down'], 'and their /health said so')
  t.ok(f.unknownKid.status === 401 && f.unknownKid.ms < UNKNOWN_KID_MS, `an unknown kid meanwhile: ${f.unknownKid.status} in ${ms(f.unknownKid.ms)}`)
  t.same(f.jwksAfter, ['up', 'up', 'up'], 'every app server fetches the JWKS again')
  t.ok(f.allRunning, 'no process died')
})

t.test('the issuer frozen (its JWKS endpoint hangs): reads go on from the cached keys', async (t) => {
  const result = await issuerOutage({ how: 'freeze', outageMs: 5000 })
  describeRun(t, result)
  const f = result.figures
  t.same(statusesOtherThan(f.reads.during, [200]), [], 'while the JWKS hangs, every read is a 200')
  t.ok((f.reads.during[200] ?? 0) > 100, `and there were plenty (${f.reads.during[200] ?? 0})`)
  t.ok(f.slowestReadDuringMs < 1000, `none waits on the JWKS (slowest ${ms(f.slowestReadDuringMs)})`)
  t.same(statusesOtherThan(f.reads.after, [200]), [])
  t.ok(f.jwksFetchesFailed > 0, `the app servers' fetches timed out (${f.jwksFetchesFailed})`)
  t.ok(f.unknownKid.status === 401 && f.unknownKid.ms < UNKNOWN_KID_MS, `an unknown kid waits for one fetch at most: ${f.unknownKid.status} in ${ms(f.unknownKid.ms)}`)
  // A login sent before the balancer's health checks mark the issuer down waits with it; after that, a 503 at once.
  t.same(statusesOtherThan(f.issuerCalls.during, [200, 503, 504]), [], 'logins and refreshes: held ones answered when it thaws, later ones 503')
  t.ok(f.markedDownMs !== undefined && f.markedDownMs < MARKED_DOWN_MS, `the balancer's health checks take the frozen issuer out within ${MARKED_DOWN_MS} ms (${ms(f.markedDownMs)})`)
  t.ok(f.settledCalls > 0, `logins and refreshes begun after that (${f.settledCalls})`)
  t.same(statusesOtherThan(f.settledStatuses, [503]), [], 'are all 503')
  t.ok(f.slowestCallSettledMs < REFUSE_MS, `within ${REFUSE_MS} ms (slowest ${ms(f.slowestCallSettledMs)})`)
  // The balancer took it out, so it comes back at the next health check that passes: a second more than a kill's.
  t.ok(f.recoverMs !== undefined && f.recoverMs < RECOVER_MS + 1000, `back within ${RECOVER_MS + 1000} ms of the thaw (${ms(f.recoverMs)})`)
  t.equal(`${f.refreshTokensKept} of ${f.refreshTokens}`, '3 of 3')
  t.same(f.jwksAfter, ['up', 'up', 'up'])
  t.ok(f.allRunning, 'no process died')
})
