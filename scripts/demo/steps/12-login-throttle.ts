import { atOnce } from '../requests.ts'
import type { Step, StepContext } from '../step.ts'
import { redisSessions } from './04-redis-sessions.ts'
import { list } from '../words.ts'

/** One burst of wrong passwords for one account, all sent at the same moment through the balancer. */
export interface GuessBurst {
  /** Where the servers kept their login counters: LOGIN_THROTTLE_STORE. */
  store: 'memory' | 'redis'
  sent: number
  /** The answers, per server: 401 (the password was checked, and wrong), 429 (refused unchecked), anything else. */
  answers: Record<string, { checked: number, throttled: number, other: number }>
  /** Password checks that failed, from the servers' own auth_logins_total{result="invalid_credentials"}: in all, and per server. */
  checked: { total: number, byServer: Record<string, number> }
  /** Logins refused unchecked, from auth_logins_total{result="throttled"}. */
  throttled: { total: number, byServer: Record<string, number> }
}

export interface SecurityState {
  account: string
  /** Each server counting alone (LOGIN_THROTTLE_STORE=memory). */
  perServer: GuessBurst
  /** The counters in one Redis every server asks (LOGIN_THROTTLE_STORE=redis). */
  shared: GuessBurst
  /** One more guess with that Redis stopped: the status it got (503, not a password check). */
  guessWhileRedisDown: { status: number, reason: string | null }
}

const ACCOUNT = 'carol'
/** Guesses per server: twice the default limit (LOGIN_MAX_FAILURES_PER_ACCOUNT, 5), so every server reaches it. */
const GUESSES_PER_SERVER = 10

async function burst (ctx: StepContext, store: GuessBurst['store']): Promise<GuessBurst> {
  const sent = GUESSES_PER_SERVER * ctx.cluster.servers.length
  const attacker = ctx.client('mallory')
  const checkedBefore = await ctx.counter('auth_logins_total', { result: 'invalid_credentials' })
  const throttledBefore = await ctx.counter('auth_logins_total', { result: 'throttled' })
  const sentAnswers = await atOnce(sent, async (i) =>
    await attacker.request('POST', '/login', { body: { username: ACCOUNT, password: `guess-${i}` }, token: null, quiet: true }))
  const checkedAfter = await ctx.counter('auth_logins_total', { result: 'invalid_credentials' })
  const throttledAfter = await ctx.counter('auth_logins_total', { result: 'throttled' })

  const answers: GuessBurst['answers'] = {}
  for (const server of ctx.cluster.servers) answers[server.id] = { checked: 0, throttled: 0, other: 0 }
  for (const a of sentAnswers) {
    const counts = answers[a.servedBy ?? 'balancer'] ??= { checked: 0, throttled: 0, other: 0 }
    if (a.status === 401) counts.checked++
    else if (a.status === 429) counts.throttled++
    else counts.other++
  }
  const delta = (after: typeof checkedAfter, before: typeof checkedBefore): GuessBurst['checked'] => ({
    total: after.total - before.total,
    byServer: Object.fromEntries(Object.entries(after.byServer).map(([id, count]) => [id, count - (before.byServer[id] ?? 0)]))
  })
  const checked = delta(checkedAfter, checkedBefore)
  const throttled = delta(throttledAfter, throttledBefore)
  ctx.out.verbatim(Object.entries(answers).map(([id, a]) =>
    `${id.padEnd(8)} ${String(a.checked + a.throttled + a.other).padStart(3)} guesses: ${ctx.out.paint('red', `${a.checked} checked (401 invalid_credentials)`)}, ${ctx.out.paint('yellow', `${a.throttled} refused unchecked (429 too_many_attempts)`)}${a.other > 0 ? `, ${a.other} other` : ''}`))
  ctx.out.note(`The servers' own counters (auth_logins_total in /metrics): ${checked.total} password checks failed (${Object.entries(checked.byServer).map(([id, k]) => `${id} ${k}`).join(', ')}), ${throttled.total} logins refused unchecked.`)
  return { store, sent, answers, checked, throttled }
}

/** "5 on each of the 3 servers", or "6 on app-1, 5 on app-2 and 4 on app-3" */
function perServer (byServer: Record<string, number>): string {
  const counts = Object.values(byServer)
  const [first] = counts
  if (first !== undefined && counts.every((k) => k === first)) return `${first} on each of the ${counts.length} servers`
  return list(Object.entries(byServer).map(([id, k]) => `${k} on ${id}`))
}

// Last, after the revocation list: JWT mode keeps no sessions, yet its logins still need
// counters, and those bring the shared store back once more.
export const loginThrottle: Step<SecurityState> = {
  title: 'login throttling: security state is state too',
  cluster: { mode: 'jwt', strategy: 'round-robin', loginThrottleStore: 'memory' },
  async run (ctx) {
    const n = ctx.cluster.servers.length
    const sent = GUESSES_PER_SERVER * n
    ctx.out.say(`One more thing the servers must remember: wrong passwords. Each counts the failed logins per account, and past 5 in a minute (LOGIN_MAX_FAILURES_PER_ACCOUNT and LOGIN_THROTTLE_WINDOW_SECONDS, at their defaults here) answers 429 without checking the password: a guesser should get 5 tries a minute. These ${n} jwt servers keep those counters in their own memory (LOGIN_THROTTLE_STORE=memory, the default in memory and plain jwt mode). A guesser sends ${sent} wrong passwords for ${ACCOUNT}, all at once, through the balancer.`)
    ctx.out.blank()
    const alone = await burst(ctx, 'memory')
    ctx.out.blank()
    ctx.out.say(`Now the same ${sent} guesses at servers that keep the counters in one Redis they all ask (LOGIN_THROTTLE_STORE=redis, the default whenever the servers use Redis anyway).`)
    const sharedCtx = await ctx.switchCluster({ mode: 'jwt', strategy: 'round-robin', loginThrottleStore: 'redis' })
    const shared = await burst(sharedCtx, 'redis')
    ctx.out.blank()
    const redis = sharedCtx.cluster.redis
    if (redis === undefined) throw new Error('the walkthrough starts its own redis-server for LOGIN_THROTTLE_STORE=redis')
    ctx.out.say('And with that Redis stopped, one more guess:')
    await redis.stop()
    const down = await sharedCtx.client('mallory').request('POST', '/login', { body: { username: ACCOUNT, password: 'one-more-guess' }, token: null })
    const guessWhileRedisDown = { status: down.status, reason: down.reason }
    const outage = down.status === 503
      ? `with Redis stopped a guess got ${down.status} ${down.reason ?? ''}, not a password check: the shared outage of step ${ctx.numberOf(redisSessions)}, though better than logins left unthrottled`
      : `with Redis stopped a guess got ${down.status}${down.reason === null ? '' : ` ${down.reason}`}`
    return {
      result: { account: ACCOUNT, perServer: alone, shared, guessWhileRedisDown },
      lesson: `With a counter in each server, ${alone.checked.total} of ${alone.sent} guesses reached the password check (${perServer(alone.checked.byServer)}), the rest got 429; with the counters in Redis, ${shared.checked.total} of ${shared.sent} did. A per-server counter behind N servers gives an attacker N times the tries. Security state is state too, with the same answer as sessions, one store every server asks, and the same price: ${outage}.`
    }
  }
}
