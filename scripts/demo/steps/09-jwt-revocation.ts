import type { Answer } from '../client.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { waitForStore } from '../store.ts'
import { tally, type Tally } from '../tally.ts'
import { list } from '../words.ts'

export interface JwtRevocation {
  beforeLogout: Tally
  afterLogout: Tally
  /** Commands the servers sent to Redis for the reads and the logout, by command. */
  commands: Record<string, number>
  reads: number
  loginWhileDown: Answer
  redisDown: Tally
  /** Alice's revoked token, once Redis came back. */
  revokedAfterReturn: Tally
}

export const jwtRevocation: Step<JwtRevocation> = {
  title: 'JWT with a revocation list: logout works, and the state is back',
  cluster: { mode: 'jwt', strategy: 'round-robin', jwtRevocation: true },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say('The fix everyone reaches for: a list of revoked tokens. These servers run with JWT_REVOCATION=redis: logout writes the token\'s id (jti) into Redis until its exp, and every server looks it up on every request. Alice logs in, reads her feed, logs out and tries her token again.')
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    const before = await ctx.metric('session_store_commands_total', 'command')
    const beforeLogout = tally(await times(n, async () => await alice.feeds()))
    await alice.logout()
    const afterLogout = tally(await times(n, async () => await alice.feeds()))
    const after = await ctx.metric('session_store_commands_total', 'command')
    const commands: Record<string, number> = {}
    for (const [command, count] of Object.entries(after)) {
      const delta = count - (before[command] ?? 0)
      if (delta > 0) commands[command] = delta
    }
    const reads = beforeLogout.total + afterLogout.total
    ctx.out.note(`The servers' counters: ${Object.entries(commands).map(([c, k]) => `${k} ${c.toUpperCase()}`).join(', ')} for ${reads} reads and 1 logout.`)
    ctx.out.blank()

    const redis = ctx.cluster.redis
    if (redis === undefined) throw new Error('the walkthrough starts its own redis-server for the revocation list')
    ctx.out.say('Bob logs in. Then Redis stops: bob reads his feed, and carol tries to log in.')
    const bob = ctx.client('bob')
    await bob.login()
    await redis.stop()
    const redisDown = tally(await times(n, async () => await bob.feeds()))
    const loginWhileDown = await ctx.client('carol').login()
    ctx.out.blank()
    ctx.out.say('Redis starts again, empty: it keeps nothing on disk. Alice tries her revoked token once more.')
    await redis.start()
    await waitForStore(ctx)
    const revokedAfterReturn = tally(await times(n, async () => await alice.feeds()))
    const exists = commands.exists ?? 0
    const forgot = revokedAfterReturn.ok > 0
      ? ` And when this Redis came back empty, alice's revoked token was accepted again (${revokedAfterReturn.ok} of ${revokedAfterReturn.total}): the list is state, with all that comes with it.`
      : ` After Redis came back, her token was still refused (${revokedAfterReturn.refused} of ${revokedAfterReturn.total}).`
    return {
      result: { beforeLogout, afterLogout, commands, reads, loginWhileDown, redisDown, revokedAfterReturn },
      lesson: `After the logout ${afterLogout.refused} of ${afterLogout.total} servers refused alice's token (${list(afterLogout.reasons)}): logout works, because every server now asks Redis on every request (${exists} EXISTS for ${reads} reads). With Redis stopped, ${redisDown.failed} of ${redisDown.total} of bob's reads were 503 (a server that cannot check the list cannot accept the token)${loginWhileDown.status === 503 ? ', and carol could not log in either (503)' : `; carol's login got ${loginWhileDown.status}`}.${forgot} A JWT that must be revocable is a session id with extra steps.`
    }
  }
}
