import t from 'tap'
import type { RedisSessions } from '../../../scripts/demo/steps/04-redis-sessions.ts'
import { postgresBesideRedis, type DatabaseBesideRedis } from '../../../scripts/demo/steps/05-postgres-beside-redis.ts'
import { STEPS } from '../../../scripts/demo/steps/index.ts'
import { runWalkthrough } from '../../../scripts/demo/walkthrough.ts'
import { formatAuthMs } from '../../../scripts/lib/auth-step-timing.ts'

/** The text as the narrator may have wrapped it: any run of spaces may be a line break and an indent. */
const wrapped = (text: string): RegExp => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ +/g, '\\s+'))

// Real clusters on a machine that may be busy: more time than the suite's default.
t.setTimeout(300_000)

// The redis step and the one that sets PostgreSQL beside it, as `npm run demo` runs them: the
// second starts on the first's cluster (the same spec), so the two steps cost two clusters.
const REDIS_STEP = 4
const POSTGRES_STEP = STEPS.indexOf(postgresBesideRedis) + 1

t.test('steps 4 and 5: sessions in Redis, then in PostgreSQL beside it', async (t) => {
  t.equal(POSTGRES_STEP, REDIS_STEP + 1, 'the PostgreSQL step comes right after the redis step')
  let output = ''
  const reports = await runWalkthrough({ fromStep: REDIS_STEP, toStep: POSTGRES_STEP, port: 0, colour: false, write: (text) => { output += text } })
  t.same(reports.map((r) => [r.step, r.mode]), [[REDIS_STEP, 'redis'], [POSTGRES_STEP, 'redis']])
  t.equal(output.match(/\[starting /g)?.length, 2, 'two clusters: the redis one, kept for the next step, and the postgres one')
  t.match(output, /\[starting 3 app servers in postgres mode behind a round-robin balancer, and a\s+private PostgreSQL…\]/)

  t.test('step 4: redis sessions, their cost, and a Redis outage', async (t) => {
    const four = reports[0]?.result as RedisSessions
    t.same([four.fetches.ok, four.fetches.total], [6, 6], 'every read accepted')
    t.equal(four.fetches.servers.length, 3, 'on every server')
    t.equal(four.loginCommands, 1, 'one command (a SET) at login, counted by the servers')
    t.equal(four.readCommands, 6, 'one (a GETEX) per read')
    t.equal(four.commandsPerFetch, 1, 'one Redis command per read')
    t.ok(four.authStep.medianMs > 0 && four.authStep.samples === 200 && four.authStep.warmup === 200, `the auth step timed the one way: ${four.authStep.how}`)
    t.equal(four.memoryAuthStep, undefined, 'step 1 did not run, so nothing to compare with')
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
    t.match(output, /1\s+SET\s+for\s+1\s+login,\s+6\s+GETEX\s+for\s+6\s+reads/, 'the command named as the README names it, whatever the metric\'s label')
    t.match(reports[0]?.lesson, /the auth step's median is \d+\.\d+ ms \(the median of 200 warm requests, 12 at a time after 200 not counted, from the servers' Server-Timing\)/)
  })

  t.test('step 5: the same requests on Redis and on PostgreSQL, each store stopped and started', async (t) => {
    const { redis, postgres, costRatio } = reports[1]?.result as DatabaseBesideRedis
    const lesson = reports[1]?.lesson ?? ''
    for (const run of [redis, postgres]) {
      const name = run.store
      t.same([run.fetches.ok, run.fetches.total, run.fetches.servers.length], [6, 6, 3], `${name}: six reads accepted, on every server`)
      t.same([run.loginCommands, run.readCommands, run.commandsPerRead], [1, 6, 1], `${name}: one command for the login and one per read, by the servers' own counters`)
      t.ok(run.authStep.medianMs > 0 && run.authStep.samples === 200 && run.authStep.warmup === 200, `${name}: the auth step timed the one way (${run.authStep.medianMs} ms)`)
      t.same([run.down.failed, run.down.total, run.down.servers.length, run.down.reasons], [3, 3, 3, ['session_store_unavailable']], `${name} stopped: a 503 on every server`)
      t.ok(run.slowestWhileDownMs < 1500, `${name} stopped: a 503 comes fast, never a hang (slowest ${Math.round(run.slowestWhileDownMs)} ms)`)
    }
    t.same([redis.afterRestart.refused, redis.afterRestart.total, redis.afterRestart.reasons], [3, 3, ['unknown_session']], 'Redis restarted without persistence: the session is gone on every server')
    t.same([postgres.afterRestart.ok, postgres.afterRestart.total, postgres.afterRestart.servers.length], [3, 3, 3], 'PostgreSQL restarted: the session from before works on every server')
    t.equal(costRatio, postgres.authStep.medianMs / redis.authStep.medianMs)

    t.match(output, wrapped('1 INSERT for 1 login, 6 UPDATE … RETURNING for 6 reads'), 'PostgreSQL\'s commands named')
    t.match(output, wrapped(`${formatAuthMs(postgres.authStep.medianMs)} ms for an UPDATE … RETURNING in PostgreSQL, against ${formatAuthMs(redis.authStep.medianMs)} ms for a Redis lookup above, measured the same way`))
    t.match(lesson, 'With either store every server read alice\'s session (6 of 6 with Redis, 6 of 6 with PostgreSQL), at 1 GETEX per read against 1 UPDATE … RETURNING per read')
    t.match(lesson, `the auth step's median was ${formatAuthMs(redis.authStep.medianMs)} ms for a GETEX and ${formatAuthMs(postgres.authStep.medianMs)} ms for an UPDATE … RETURNING (each the ${redis.authStep.how})`)
    // The lesson says what the two medians say, whichever way they fell on this machine.
    if (costRatio > 1) {
      t.match(lesson, `the database cost ${costRatio.toFixed(1)} times the cache`)
      t.match(lesson, 'The trade: a database costs more per request than a cache, and keeps what a cache without persistence loses.')
    } else {
      t.comment(`PostgreSQL's median (${postgres.authStep.medianMs} ms) came out no more than Redis's (${redis.authStep.medianMs} ms) on this run`)
      t.match(lesson, 'this time the database cost no more than the cache')
      t.match(lesson, 'The trade: a database keeps what a cache without persistence loses.')
    }
    t.match(lesson, '3 of 3 reads 503 session_store_unavailable with Redis, 3 of 3 reads 503 session_store_unavailable with PostgreSQL')
    t.match(lesson, 'Restarted, PostgreSQL still had alice\'s session (3 of 3 accepted), and Redis had forgotten it (3 of 3 refused 401 unknown_session).')
  })
})
