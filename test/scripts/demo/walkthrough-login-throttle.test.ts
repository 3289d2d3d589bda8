import t from 'tap'
import type { SecurityState } from '../../../scripts/demo/steps/12-login-throttle.ts'
import { STEPS } from '../../../scripts/demo/steps/index.ts'
import { runWalkthrough } from '../../../scripts/demo/walkthrough.ts'

// Real clusters on a machine that may be busy: more time than the suite's default.
t.setTimeout(300_000)

const STEP = STEPS.findIndex((s) => s.title.startsWith('login throttling')) + 1

t.test('the login throttle step: per-server counters give N times the tries, shared ones the limit', async (t) => {
  t.ok(STEP > 0, 'the step is in the registry')
  let output = ''
  const reports = await runWalkthrough({ fromStep: STEP, toStep: STEP, port: 0, colour: false, write: (text) => { output += text } })
  t.same(reports.map((r) => [r.step, r.mode]), [[STEP, 'jwt']])
  const { perServer, shared, guessWhileRedisDown, account } = reports[0]?.result as SecurityState

  t.equal(perServer.store, 'memory')
  t.equal(perServer.sent, 30, 'ten guesses per server, all at once')
  // Counted from each server's own /metrics: the password check ran 5 times on each, the limit per server.
  t.same(perServer.checked.byServer, { 'app-1': 5, 'app-2': 5, 'app-3': 5 }, 'each server counting alone let 5 guesses reach the password check')
  t.equal(perServer.checked.total, 15, '15 in all: 3 times the limit')
  t.equal(perServer.throttled.total, 15, 'the rest refused unchecked')
  for (const [id, a] of Object.entries(perServer.answers)) {
    t.same(a, { checked: 5, throttled: 5, other: 0 }, `${id}: what the guesser saw matches its counters (401 five times, then 429)`)
  }

  t.equal(shared.store, 'redis')
  t.equal(shared.sent, 30)
  t.equal(shared.checked.total, 5, 'with the counters in Redis, 5 reached the password check in all')
  t.equal(shared.throttled.total, 25, 'and every other guess was refused unchecked')
  t.equal(Object.values(shared.answers).reduce((n, a) => n + a.checked, 0), 5, 'the guesser saw 5 answers of 401')
  t.equal(Object.values(shared.answers).reduce((n, a) => n + a.throttled, 0), 25, 'and 25 of 429')
  t.same(guessWhileRedisDown, { status: 503, reason: 'session_store_unavailable' }, 'with that Redis stopped a login is a 503, never an unthrottled check')

  t.equal(account, 'carol')
  const lesson = reports[0]?.lesson ?? ''
  t.match(lesson, 'With a counter in each server, 15 of 30 guesses reached the password check (5 on each of the 3 servers), the rest got 429; with the counters in Redis, 5 of 30 did.')
  t.match(lesson, 'A per-server counter behind N servers gives an attacker N times the tries. Security state is state too')
  t.match(output, 'LOGIN_THROTTLE_STORE=memory…]', 'the first cluster says where it counts')
  t.match(output, /LOGIN_THROTTLE_STORE=redis, and a private\s+redis-server…\]/, 'and so does the second')
  t.match(output, /app-1 +10 guesses: 5 checked \(401 invalid_credentials\), 5 refused unchecked \(429 too_many_attempts\)/)
})
