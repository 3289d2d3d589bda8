import type { AuthStepTiming } from '../../lib/auth-step-timing.ts'
import type { Answer } from '../client.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { jwtStateless } from './06-jwt-stateless.ts'
import { storeCommandsDuring, waitForStore } from '../store.ts'
import { tally, type Tally } from '../tally.ts'
import { list, ms, timingNote } from '../words.ts'

export interface JwtRevocation {
  beforeLogout: Tally
  afterLogout: Tally
  /** Commands the servers sent to Redis for the reads (an EXISTS each), from their own counters. */
  readCommands: number
  /** And for the logout (a SET of the token's jti). */
  logoutCommands: number
  reads: number
  /** The auth step with the list: a signature check and a Redis lookup. */
  authStep: AuthStepTiming
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
    const before = await storeCommandsDuring(ctx, async () => tally(await times(n, async () => await alice.feeds())))
    const logout = await storeCommandsDuring(ctx, async () => await alice.logout())
    const after = await storeCommandsDuring(ctx, async () => tally(await times(n, async () => await alice.feeds())))
    const beforeLogout = before.value
    const afterLogout = after.value
    const reads = beforeLogout.total + afterLogout.total
    const readCommands = before.commands + after.commands
    ctx.out.note(`The servers' counters (session_store_commands_total): ${readCommands} EXISTS for ${reads} reads, ${logout.commands} SET for 1 logout.`)
    ctx.out.blank()

    const redis = ctx.cluster.redis
    if (redis === undefined) throw new Error('the walkthrough starts its own redis-server for the revocation list')
    ctx.out.say('Bob logs in. Then Redis stops: bob reads his feed, and carol tries to log in.')
    const bob = ctx.client('bob')
    await bob.login()
    const authStep = await ctx.timeAuthStep(bob.token ?? '')
    const jwt = ctx.memo.authStep.jwt
    ctx.out.note(timingNote(authStep, `a signature check and a Redis lookup${jwt === undefined ? '' : `, against ${ms(jwt)} for the signature alone in step ${ctx.numberOf(jwtStateless)}, measured the same way`}`))
    await redis.stop()
    const redisDown = tally(await times(n, async () => await bob.feeds()))
    const loginWhileDown = await ctx.client('carol').login()
    ctx.out.blank()
    ctx.out.say('Redis starts again, empty: it keeps nothing on disk. Alice tries her revoked token once more.')
    await redis.start()
    await waitForStore(ctx)
    const revokedAfterReturn = tally(await times(n, async () => await alice.feeds()))
    const forgot = revokedAfterReturn.ok > 0
      ? ` And when this Redis came back empty, alice's revoked token was accepted again (${revokedAfterReturn.ok} of ${revokedAfterReturn.total}): the list is state, with all that comes with it.`
      : ` After Redis came back, her token was still refused (${revokedAfterReturn.refused} of ${revokedAfterReturn.total}).`
    const cost = jwt === undefined
      ? `the auth step's median is ${ms(authStep)}`
      : `the auth step's median went from ${ms(jwt)} (step ${ctx.numberOf(jwtStateless)}, the signature alone) to ${ms(authStep)}`
    return {
      result: { beforeLogout, afterLogout, readCommands, logoutCommands: logout.commands, reads, authStep, loginWhileDown, redisDown, revokedAfterReturn },
      lesson: `After the logout ${afterLogout.refused} of ${afterLogout.total} servers refused alice's token (${list(afterLogout.reasons)}): logout works, because every server now asks Redis on every request (${readCommands} EXISTS for ${reads} reads), and ${cost} (the ${authStep.how}). With Redis stopped, ${redisDown.failed} of ${redisDown.total} of bob's reads were 503 (a server that cannot check the list cannot accept the token)${loginWhileDown.status === 503 ? ', and carol could not log in either (503)' : `; carol's login got ${loginWhileDown.status}`}.${forgot} A JWT that must be revocable is a session id with extra steps.`
    }
  }
}
