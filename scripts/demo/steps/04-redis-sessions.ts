import type { Answer } from '../client.ts'
import { sampleAuthMs, TIMING_SAMPLES } from '../auth-timing.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { waitForStore } from '../store.ts'
import { tally, type Tally } from '../tally.ts'
import { list, ms } from '../words.ts'

export interface RedisSessions {
  fetches: Tally
  /** Commands the servers sent to Redis during the login and the fetches, by command. */
  commands: Record<string, number>
  commandsPerFetch: number
  authMedianMs: number | undefined
  memoryAuthMedianMs: number | undefined
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
    const before = await ctx.metric('session_store_commands_total', 'command')
    await alice.login()
    const answers = await times(6, async () => await alice.feeds())
    const after = await ctx.metric('session_store_commands_total', 'command')
    const fetches = tally(answers)
    const commands: Record<string, number> = {}
    for (const [command, count] of Object.entries(after)) {
      const delta = count - (before[command] ?? 0)
      if (delta > 0) commands[command] = delta
    }
    const commandsPerFetch = ((commands.get ?? 0) + (commands.getex ?? 0)) / answers.length
    ctx.out.note(`The servers' own counters (session_store_commands_total in /metrics): ${Object.entries(commands).map(([c, k]) => `${k} ${c.toUpperCase()}`).join(', ')} for 1 login and ${answers.length} reads.`)
    const authMedianMs = await sampleAuthMs(alice, answers)
    ctx.memo.redisAuthMs = authMedianMs
    const memoryAuthMedianMs = ctx.memo.memoryAuthMs
    ctx.out.note(`(and ${TIMING_SAMPLES} more, not shown: the auth step's median is ${ms(authMedianMs)} ms here${memoryAuthMedianMs === undefined ? '' : `, ${ms(memoryAuthMedianMs)} ms in memory mode (step 1)`})`)
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

    const added = authMedianMs !== undefined && memoryAuthMedianMs !== undefined
      ? `, and the auth step's median went from ${ms(memoryAuthMedianMs)} ms (a Map lookup) to ${ms(authMedianMs)} ms: a network round trip on every request, on every server`
      : `, and the auth step's median is ${ms(authMedianMs)} ms, a network round trip included, on every request`
    return {
      result: { fetches, commands, commandsPerFetch, authMedianMs, memoryAuthMedianMs, redisDown, loginWhileDown, slowestWhileDownMs, afterReturn, afterNewLogin },
      lesson: `Every server accepted alice (${fetches.ok} of ${fetches.total}, on ${list(fetches.servers)}) because every one asked Redis: ${commandsPerFetch} Redis command${commandsPerFetch === 1 ? '' : 's'} per read${added}. With Redis stopped, ${redisDown.failed} of ${redisDown.total} reads were ${redisDown.failed > 0 ? 'refused with 503 ' : ''}${list(redisDown.reasons)}, from ${list(redisDown.servers)}, ${loginWhileDown.status === 503 ? 'and so was bob\'s login, ' : `bob's login got ${loginWhileDown.status}, `}the slowest answer in ${Math.round(slowestWhileDownMs)} ms: one shared store, one shared outage. And a Redis that keeps nothing on disk forgets every session when it restarts (${afterReturn.refused} of ${afterReturn.total} refused after it came back).`
    }
  }
}
