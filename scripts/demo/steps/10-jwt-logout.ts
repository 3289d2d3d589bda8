import type { Answer } from '../client.ts'
import { decodeJwt } from '../jwt.ts'
import { sleep, times } from '../requests.ts'
import type { Step } from '../step.ts'
import { redisSessions } from './04-redis-sessions.ts'
import { jwtStateless } from './06-jwt-stateless.ts'
import { jwtRevocation } from './11-jwt-revocation.ts'
import { tally, type Tally } from '../tally.ts'
import { clock, list, ms } from '../words.ts'

export interface JwtLogout {
  ttlSeconds: number
  logout: Answer
  afterLogout: Tally
  /** Seconds from the logout until every server refused the token. */
  refusedAfterSeconds: number
  afterExpiry: Tally
}

const SHORT_TTL_SECONDS = 3

export const jwtLogout: Step<JwtLogout> = {
  title: 'JWT: log out, and the token still works',
  // A short lifetime, so the token's end comes within the walkthrough. The clock tolerance is
  // set to none for the same reason (servers that know no such variable ignore it).
  cluster: { mode: 'jwt', strategy: 'round-robin', sessionTtlSeconds: SHORT_TTL_SECONDS, serverEnv: { JWT_CLOCK_TOLERANCE_SECONDS: '0' } },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    ctx.out.say(`The price of keeping no state. These servers issue tokens that live ${SHORT_TTL_SECONDS} s (SESSION_TTL_SECONDS=${SHORT_TTL_SECONDS}; npm start's default is 3600). Alice logs in, reads her feed and logs out.`)
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    await alice.feeds()
    const logout = await alice.logout()
    const loggedOutAt = Date.now()
    ctx.out.note('The logout cleared her cookie. Her client still holds the token, as would anyone who copied it. It reads the feed on every server:')
    const afterLogout = tally(await times(n, async () => await alice.feeds()))
    const exp = Number(decodeJwt(alice.token ?? '').payload.exp)
    ctx.out.blank()
    ctx.out.say(`It carries exp ${clock(exp)}. Waiting for that…`)
    let afterExpiry = afterLogout
    const deadline = exp * 1000 + 15_000
    await sleep(Math.max(0, exp * 1000 - Date.now()) + 250)
    for (;;) {
      afterExpiry = tally(await times(n, async () => await alice.feeds()))
      if (afterExpiry.ok === 0 || Date.now() > deadline) break
      ctx.out.note('(still accepted: the servers allow a little clock skew; waiting a second more)')
      await sleep(1000)
    }
    const refusedAfterSeconds = Math.round((Date.now() - loggedOutAt) / 100) / 10
    // Quoted only when this walkthrough measured them: the redis step's lookup, the first jwt step's signature check.
    const [redisStep, jwtStep] = [ctx.numberOf(redisSessions), ctx.numberOf(jwtStateless)]
    const { redis, jwt } = ctx.memo.authStep
    const roundTrip = redis === undefined
      ? ''
      : ` (the auth step's median was ${ms(redis)} there${jwt === undefined ? '' : `, against ${ms(jwt)} for the signature alone in step ${jwtStep}`}; each the ${redis.how})`
    const lesson = afterLogout.ok > 0
      ? `After the logout, ${afterLogout.ok} of ${afterLogout.total} servers still accepted the token: logout cleared a cookie, and no server keeps anything it could forget. It stopped working only at exp, ${refusedAfterSeconds} s after the logout (${list(afterExpiry.reasons)}); with npm start's 3600 s, a stolen or logged-out token works for up to an hour. A shorter lifetime narrows that window but means new tokens more often (refresh tokens: more requests, more moving parts). A revocation list closes it, but it is state again: every server checks it on every request, a shared-store round trip as in step ${redisStep}${roundTrip}. Step ${ctx.numberOf(jwtRevocation)} runs one.`
      : `After the logout, ${afterLogout.refused} of ${afterLogout.total} servers refused the token (${list(afterLogout.reasons)}): these servers keep a list of logged-out tokens. That list is state again: every server checks it on every request, a shared-store round trip as in step ${redisStep}${roundTrip}, the very cost JWTs were meant to avoid.`
    return {
      result: { ttlSeconds: SHORT_TTL_SECONDS, logout, afterLogout, refusedAfterSeconds, afterExpiry },
      lesson
    }
  }
}
