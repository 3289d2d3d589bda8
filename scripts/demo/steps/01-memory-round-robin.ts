import { sampleAuthMs, TIMING_SAMPLES } from '../auth-timing.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { tally, type Tally } from '../tally.ts'
import { list, ms } from '../words.ts'

export interface MemoryRoundRobin {
  home: string
  fetches: Tally
  authMedianMs: number | undefined
}

export const memoryRoundRobin: Step<MemoryRoundRobin> = {
  title: 'memory sessions behind a round-robin balancer',
  cluster: { mode: 'memory', strategy: 'round-robin' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say(`${n} identical app servers, each keeping its sessions in its own memory (a Map inside the process). The balancer sends each request to the next server in turn: round robin. Alice logs in, then reads her feed six times.`)
    ctx.out.blank()
    const alice = ctx.client('alice')
    const login = await alice.login()
    const home = login.servedBy ?? '?'
    const answers = await times(6, async () => await alice.feeds())
    const fetches = tally(answers)
    const authMedianMs = await sampleAuthMs(alice, answers)
    ctx.memo.memoryAuthMs = authMedianMs
    ctx.out.note(`(and ${TIMING_SAMPLES} more requests, not shown, to time the auth step: a median of ${ms(authMedianMs)} ms for a Map lookup)`)
    const others = ctx.cluster.servers.map((s) => s.id).filter((id) => id !== home)
    const share = fetches.refused * n === fetches.total * (n - 1) ? `: ${n - 1} of every ${n},` : ''
    return {
      result: { home, fetches, authMedianMs },
      lesson: `${fetches.refused} of ${fetches.total} were refused${share} with ${list(fetches.reasons)}. Only ${home}, where alice logged in, has her session in its memory; to ${list(others)} she is a stranger. The post's story, exactly.`
    }
  }
}
