import type { Answer } from '../client.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { tally, type Tally } from '../tally.ts'

export interface MemoryLogoutRestart {
  home: string
  logoutServedBy: string
  afterLogout: Tally
  afterRestart: Tally
}

export const memoryLogoutRestart: Step<MemoryLogoutRestart> = {
  title: 'memory sessions: log out on one server, restart another',
  cluster: { mode: 'memory', strategy: 'round-robin' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say('Still memory mode. Alice logs in, then logs out. The logout is a request like any other: the balancer sends it to the next server.')
    ctx.out.blank()
    const alice = ctx.client('alice')
    let home = ''
    let logout: Answer | undefined
    // Sequential requests never land twice in a row on one server; other traffic (a dashboard
    // click) could make them, so try again rather than tell a story that did not happen.
    for (let attempt = 0; attempt < 3; attempt++) {
      home = (await alice.login()).servedBy ?? '?'
      logout = await alice.logout()
      if (logout.servedBy !== home) break
    }
    const logoutServedBy = logout?.servedBy ?? '?'
    ctx.out.note(`The logout reached ${logoutServedBy}, which had no session to delete. ${home} still has one. Alice's client keeps its token and reads the feed on every server:`)
    const afterLogout = tally(await times(n, async () => await alice.feeds()))
    ctx.out.blank()
    ctx.out.say(`Now ${home} restarts, as it would for a deploy: the process stops and starts again on the same port.`)
    const server = ctx.server(home)
    await server.stop()
    ctx.out.note(`${home} stopped; starting it again…`)
    await server.start()
    await ctx.settle()
    ctx.out.note(`${home} is back, and the balancer's health check has seen it. Alice reads her feed on every server:`)
    const afterRestart = tally(await times(n, async () => await alice.feeds()))
    return {
      result: { home, logoutServedBy, afterLogout, afterRestart },
      lesson: `Logging out on ${logoutServedBy} deleted nothing: ${home} still accepted alice (${afterLogout.ok} of ${afterLogout.total}). Restarting ${home} wiped its memory: ${afterRestart.refused} of ${afterRestart.total} refused, alice is logged out, and so is everyone else who logged in there. To log someone out everywhere, every server would have to be told: the "invalidate everywhere" nightmare.`
    }
  }
}
