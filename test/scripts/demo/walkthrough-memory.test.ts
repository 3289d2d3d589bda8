import t from 'tap'
import type { MemoryRoundRobin } from '../../../scripts/demo/steps/01-memory-round-robin.ts'
import type { MemoryLogoutRestart } from '../../../scripts/demo/steps/02-memory-logout-restart.ts'
import type { Sticky } from '../../../scripts/demo/steps/03-sticky-sessions.ts'
import { STEPS } from '../../../scripts/demo/steps/index.ts'
import { runWalkthrough } from '../../../scripts/demo/walkthrough.ts'
import { formatAuthMs } from '../../../scripts/lib/auth-step-timing.ts'

/** The text as the narrator may have wrapped it: any run of spaces may be a line break and an indent. */
const wrapped = (text: string): RegExp => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ +/g, '\\s+'))

// Real clusters on a machine that may be busy: more time than the suite's default.
t.setTimeout(300_000)

// Steps 1-3, in --auto fashion, in this process: each step returns what it measured, and
// its lesson quotes those numbers.
t.test('steps 1-3: memory sessions, round robin and sticky', async (t) => {
  let output = ''
  const reports = await runWalkthrough({ fromStep: 1, toStep: 3, port: 0, colour: false, write: (text) => { output += text } })
  t.same(reports.map((r) => [r.step, r.mode, r.strategy]), [[1, 'memory', 'round-robin'], [2, 'memory', 'round-robin'], [3, 'memory', 'sticky']])

  const one = reports[0]?.result as MemoryRoundRobin
  t.match(one.home, /^app-[123]$/)
  t.equal(one.fetches.total, 6)
  t.equal(one.fetches.ok, 2, 'two of six accepted: the login server, twice')
  t.equal(one.fetches.refused, 4)
  t.same(one.fetches.byServer[one.home], { ok: 2, refused: 0, failed: 0 })
  t.same(one.fetches.reasons, ['unknown_session'])
  t.ok(one.authStep.medianMs > 0 && one.authStep.medianMs < 1, `the auth step timed: a Map lookup, ${one.authStep.medianMs} ms`)
  t.match(output, wrapped(`to time the auth step: ${formatAuthMs(one.authStep.medianMs)} ms for a Map lookup, the ${one.authStep.how}`), 'and said how it was measured')
  t.match(one.authStep.how, 'median of 200 warm requests, 12 at a time after 200 not counted, from the servers\' Server-Timing')
  t.match(reports[0]?.lesson, `4 of 6 were refused: 2 of every 3, with unknown_session. Only ${one.home}, where alice logged in`)

  const two = reports[1]?.result as MemoryLogoutRestart
  t.not(two.logoutServedBy, two.home, 'the logout landed on another server')
  t.equal(two.afterLogout.ok, 1, 'after that logout the session still works on its own server')
  t.same(two.afterLogout.byServer[two.home], { ok: 1, refused: 0, failed: 0 })
  t.equal(two.afterRestart.ok, 0, 'after its server restarts, nowhere')
  t.equal(two.afterRestart.refused, 3)
  t.same(two.afterRestart.servers.length, 3, 'asked on every server')
  t.match(reports[1]?.lesson, `Logging out on ${two.logoutServedBy} deleted nothing: ${two.home} still accepted alice (1 of 3). Restarting ${two.home} wiped its memory: 3 of 3 refused`)

  const three = reports[2]?.result as Sticky
  t.equal(new Set(Object.values(three.pins)).size, 3, 'three users pinned to three servers')
  t.same([three.pinned.ok, three.pinned.refused], [9, 0], 'pinned: no refusals')
  t.equal(three.crashed, three.pins.alice)
  t.not(three.movedTo, three.crashed)
  t.same([three.afterCrash.ok, three.afterCrash.refused], [0, 2], 'alice is logged out by the crash')
  t.same(three.afterCrash.reasons, ['unknown_session'])
  if (three.moved.length === 0) {
    t.equal(three.load[three.crashed], 0, 'the server that came back gets no one: everyone is pinned elsewhere')
    t.equal(three.afterReturn.ok, 12)
  } else {
    t.comment(`a health check timed out under load and moved ${three.moved.join(', ')}; the walkthrough said so`)
    t.match(output, 'moved too: a health check timed out')
  }
  t.match(reports[2]?.lesson, `came back to ${three.load[three.crashed] ?? 0} of the next 12 requests`)

  t.match(output, `Step 1 of ${STEPS.length}: memory sessions behind a round-robin balancer`)
  t.match(output, /POST \/login +→ app-\d +✔ 200 accepted/)
  t.match(output, /GET +\/feeds +→ app-\d +✘ 401 unknown_session/)
  t.match(output, 'Lesson: 4 of 6 were refused')
  t.match(output, '/_balancer/')
})
