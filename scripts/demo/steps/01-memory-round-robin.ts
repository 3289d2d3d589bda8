import type { AuthStepTiming } from '../../lib/auth-step-timing.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { tally, type Tally } from '../tally.ts'
import { list, timingNote } from '../words.ts'

export interface MemoryRoundRobin {
  home: string
  fetches: Tally
  authStep: AuthStepTiming
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
    const fetches = tally(await times(6, async () => await alice.feeds()))
    const authStep = await ctx.timeAuthStep(alice.token ?? '')
    ctx.memo.authStep.memory = authStep
    ctx.out.note(timingNote(authStep, 'a Map lookup'))
    const others = ctx.cluster.servers.map((s) => s.id).filter((id) => id !== home)
    const share = fetches.refused * n === fetches.total * (n - 1) ? `: ${n - 1} of every ${n},` : ''
    return {
      result: { home, fetches, authStep },
      lesson: `${fetches.refused} of ${fetches.total} were refused${share} with ${list(fetches.reasons)}. Only ${home}, where alice logged in, has her session in its memory; to ${list(others)} she is a stranger. The post's story, exactly.`
    }
  }
}
