import type { AuthStepTiming } from '../../lib/auth-step-timing.ts'
import type { Answer } from '../client.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { memoryRoundRobin } from './01-memory-round-robin.ts'
import { storeCommandsDuring, waitForStore } from '../store.ts'
import { tally, type Tally } from '../tally.ts'
import { list, ms, timingNote } from '../words.ts'

export interface RedisSessions {
  fetches: Tally
  /** Commands the servers sent to Redis for the login (a SET), from their own counters. */
  loginCommands: number
  /** And for the reads (a GETEX each). */
  readCommands: number
  commandsPerFetch: number
  authStep: AuthStepTiming
  /** The first step's (a Map lookup), when it ran in this walkthrough. */
  memoryAuthStep: AuthStepTiming | undefined
  redisDown: Tally
  loginWhileDown: Answer
  slowestWhileDownMs: number
  afterReturn: Tally
  afterNewLogin: Tally
}

export const redisSessions: Step<RedisSessions> = {
  title: 'redis sessions: every server sees them, at a price',
  cluster: { mode: 'redis', strategy: 'round-robin' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say('Now the sessions move out of the servers into one Redis that every server asks, and the balancer is round robin again. Alice logs in and reads her feed six times.')
    ctx.out.blank()
    const alice = ctx.client('alice')
    const login = await storeCommandsDuring(ctx, async () => await alice.login())
    const reads = await storeCommandsDuring(ctx, async () => await times(6, async () => await alice.feeds()))
    const answers = reads.value
    const fetches = tally(answers)
    const commandsPerFetch = reads.commands / answers.length
    ctx.out.note(`The servers' own counters (session_store_commands_total in /metrics): ${login.commands} SET for 1 login, ${reads.commands} GETEX for ${answers.length} reads (a GET that also renews the session's idle expiry).`)
    const authStep = await ctx.timeAuthStep(alice.token ?? '')
    ctx.memo.authStep.redis = authStep
    const memoryAuthStep = ctx.memo.authStep.memory
    ctx.out.note(timingNote(authStep, `a Redis lookup${memoryAuthStep === undefined ? '' : `, against ${ms(memoryAuthStep)} for a Map lookup in step ${ctx.numberOf(memoryRoundRobin)}, measured the same way`}`))
    ctx.out.blank()

    const redis = ctx.cluster.redis
    if (redis === undefined) throw new Error('the walkthrough starts its own redis-server in redis mode')
    ctx.out.say('Now Redis stops. Alice reads her feed, and bob tries to log in.')
    await redis.stop()
    const downAnswers = await times(2 * n, async () => await alice.feeds())
    const loginWhileDown = await ctx.client('bob').login()
    const redisDown = tally(downAnswers)
    const slowestWhileDownMs = Math.max(...downAnswers.map((a) => a.ms), loginWhileDown.ms)
    ctx.out.blank()
    ctx.out.say('Redis starts again. Alice reads her feed with the session she had.')
    await redis.start()
    await waitForStore(ctx)
    const afterReturn = tally(await times(n, async () => await alice.feeds()))
    ctx.out.note('This Redis keeps nothing on disk: it came back empty. Alice logs in again.')
    await alice.login()
    const afterNewLogin = tally(await times(n, async () => await alice.feeds()))

    const added = memoryAuthStep !== undefined
      ? `, and the auth step's median went from ${ms(memoryAuthStep)} (a Map lookup) to ${ms(authStep)} (each the ${authStep.how}): a network round trip on every request, on every server, and under load the wait for the event loop to pick its answer up`
      : `, and the auth step's median is ${ms(authStep)} (the ${authStep.how}): a network round trip on every request, on every server, and under load the wait for the event loop to pick its answer up`
    return {
      result: { fetches, loginCommands: login.commands, readCommands: reads.commands, commandsPerFetch, authStep, memoryAuthStep, redisDown, loginWhileDown, slowestWhileDownMs, afterReturn, afterNewLogin },
      lesson: `Every server accepted alice (${fetches.ok} of ${fetches.total}, on ${list(fetches.servers)}) because every one asked Redis: ${commandsPerFetch} Redis command${commandsPerFetch === 1 ? '' : 's'} per read${added}. With Redis stopped, ${redisDown.failed} of ${redisDown.total} reads were ${redisDown.failed > 0 ? 'refused with 503 ' : ''}${list(redisDown.reasons)}, from ${list(redisDown.servers)}, ${loginWhileDown.status === 503 ? 'and so was bob\'s login, ' : `bob's login got ${loginWhileDown.status}, `}the slowest answer in ${Math.round(slowestWhileDownMs)} ms: one shared store, one shared outage. And a Redis that keeps nothing on disk forgets every session when it restarts (${afterReturn.refused} of ${afterReturn.total} refused after it came back).`
    }
  }
}
