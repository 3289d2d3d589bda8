import t from 'tap'
import type { RedisSessions } from '../../../scripts/demo/steps.ts'
import { runWalkthrough } from '../../../scripts/demo/walkthrough.ts'

// Real clusters on a machine that may be busy: more time than the suite's default.
t.setTimeout(300_000)

t.test('step 4: redis sessions, their cost, and a Redis outage', async (t) => {
  let output = ''
  const reports = await runWalkthrough({ fromStep: 4, toStep: 4, port: 0, colour: false, write: (text) => { output += text } })
  t.equal(reports.length, 1)
  const four = reports[0]?.result as RedisSessions
  t.same([four.fetches.ok, four.fetches.total], [6, 6], 'every read accepted')
  t.equal(four.fetches.servers.length, 3, 'on every server')
  t.equal(four.commands.set, 1, 'one SET at login, counted by the servers')
  t.equal(four.commandsPerFetch, 1, 'one Redis command per read')
  t.type(four.authMedianMs, 'number')
  t.equal(four.memoryAuthMedianMs, undefined, 'step 1 did not run, so nothing to compare with')
  t.same([four.redisDown.failed, four.redisDown.total], [6, 6], 'with Redis stopped every read is a 503')
  t.same(four.redisDown.reasons, ['session_store_unavailable'])
  t.equal(four.redisDown.servers.length, 3, 'from every server')
  t.equal(four.loginWhileDown.status, 503, 'and so is a login')
  t.ok(four.slowestWhileDownMs < 1500, `a 503 comes fast, never a hang (slowest ${Math.round(four.slowestWhileDownMs)} ms)`)
  t.same([four.afterReturn.refused, four.afterReturn.reasons], [3, ['unknown_session']], 'Redis came back empty')
  t.equal(four.afterNewLogin.ok, 3, 'a new login works again')
  t.match(reports[0]?.lesson, 'Every server accepted alice (6 of 6')
  t.match(reports[0]?.lesson, '1 Redis command per read')
  t.match(reports[0]?.lesson, '6 of 6 reads were refused with 503 session_store_unavailable')
  t.match(output, /1 SET, 6 GETEX\s+for\s+1\s+login\s+and\s+6\s+reads/)
})
