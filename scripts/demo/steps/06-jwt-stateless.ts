import type { AuthStepTiming } from '../../lib/auth-step-timing.ts'
import { decodeJwt, signatureMatches } from '../jwt.ts'
import { times } from '../requests.ts'
import type { Step } from '../step.ts'
import { redisSessions } from './04-redis-sessions.ts'
import { tally, type Tally } from '../tally.ts'
import { clock, list, ms, timingNote } from '../words.ts'

export interface JwtStateless {
  fetches: Tally
  header: Record<string, unknown>
  payload: Record<string, unknown>
  signatureMatches: boolean
  authStep: AuthStepTiming
}

export const jwtStateless: Step<JwtStateless> = {
  title: 'JWT: no shared state, and nothing hidden',
  cluster: { mode: 'jwt', strategy: 'round-robin' },
  async run (ctx) {
    ctx.out.say('jwt mode: no sessions at all. At login the server signs a token with JWT_SECRET, a secret every server holds; each request carries the token. Alice logs in and reads her feed six times.')
    ctx.out.blank()
    const alice = ctx.client('alice')
    await alice.login()
    const fetches = tally(await times(6, async () => await alice.feeds()))
    const authStep = await ctx.timeAuthStep(alice.token ?? '')
    ctx.memo.authStep.jwt = authStep
    const redis = ctx.memo.authStep.redis
    ctx.out.note(timingNote(authStep, `a signature check${redis === undefined ? '' : `, against ${ms(redis)} for a Redis lookup in step ${ctx.numberOf(redisSessions)}, measured the same way`}`))
    ctx.out.blank()

    const token = alice.token ?? ''
    const { parts, header, payload, payloadText } = decodeJwt(token)
    ctx.out.say('What is in the token? Three base64url parts, separated by dots:')
    ctx.out.verbatim([parts[0], `.${parts[1]}`, `.${parts[2]}`].map((p) => p.length > 78 ? `${p.slice(0, 75)}...` : p))
    ctx.out.say('Decode the first two, no key needed:')
    ctx.out.verbatim([`header:  ${JSON.stringify(header)}`, `payload: ${payloadText}`], 'yellow')
    const exp = typeof payload.exp === 'number' ? payload.exp : 0
    ctx.out.note(`sub is "${String(payload.sub)}", and exp is ${exp}: ${clock(exp)}, ${exp - Math.floor(Date.now() / 1000)} s from now.`)
    ctx.out.say('The third part is the signature: HMAC-SHA256 over the first two, keyed with JWT_SECRET. The launcher made this cluster\'s secret, so the walkthrough can compute it too:')
    const matches = signatureMatches(token, ctx.cluster.jwtSecret ?? '')
    ctx.out.verbatim([`HMAC-SHA256(part1 + "." + part2, JWT_SECRET) ${matches ? '= part3 ✔' : '≠ part3 ✘'}`])
    return {
      result: { fetches, header, payload, signatureMatches: matches, authStep },
      lesson: `${fetches.ok} of ${fetches.total} accepted, on ${list(fetches.servers)}, with no store at all: each server checked the signature itself, in a median of ${ms(authStep)} (the ${authStep.how}). The header and payload are base64url, an encoding, not encryption: anyone holding the token reads sub="${String(payload.sub)}" and exp. The post calls JWTs encrypted; they are signed, which proves who made them and hides nothing.`
    }
  }
}
