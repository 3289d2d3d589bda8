import type { FastifyBaseLogger } from 'fastify'
import type { Counter } from 'prom-client'
import { Type } from 'typebox'
import { addressKey, type LoginThrottle } from './login-throttle.ts'
import type { UserStore } from './users.ts'

// What every process that logs users in shares (the app server's /login in memory, redis and
// hs256 jwt mode; the issuer's in eddsa mode): the body it accepts, the refusals it answers, and
// the order of the checks. Kept in one place so that both count attempts the same way.

export const LoginBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 256 })
}, { additionalProperties: false })

/** /login's own refusals, serialised from these (fast-json-stringify drops a field not named). */
export const LoginRefusals = {
  401: Type.Object({ error: Type.Literal('invalid_credentials'), servedBy: Type.String() }),
  429: Type.Object({ error: Type.Literal('too_many_attempts'), message: Type.String(), retryAfter: Type.Integer(), servedBy: Type.String() })
}

export interface LoginCheckDeps {
  loginThrottle: LoginThrottle
  users: UserStore
  /** auth_logins_total: this counts throttled, invalid_credentials and unavailable; the caller counts ok. */
  logins: Counter<'result'>
}

export type LoginCheck =
  | { outcome: 'ok', user: string }
  | { outcome: 'throttled', retryAfterSeconds: number, scope: 'account' | 'address' }
  | { outcome: 'invalid_credentials' }

/**
 * The throttle, then the password. Counted before the password is checked: attempts sent at the
 * same moment each take their place in the budget, so no more than the limit ever reach the
 * check (a check-then-count let every one of them through). A right password gives its attempt
 * back. The throttle's counters may live in Redis: a store it cannot reach throws
 * (SessionStoreUnavailableError, a 503), never opens the login, or an outage would be a free
 * window for guessing passwords. `ip` is request.ip: the balancer's X-Forwarded-For only when
 * the balancer is a trusted proxy.
 */
export async function checkLogin (deps: LoginCheckDeps, username: string, password: string, ip: string, log: FastifyBaseLogger): Promise<LoginCheck> {
  const address = addressKey(ip)
  let verdict
  try {
    verdict = await deps.loginThrottle.count(username, address)
  } catch (err) {
    deps.logins.inc({ result: 'unavailable' })
    throw err
  }
  if (!verdict.allowed) {
    deps.logins.inc({ result: 'throttled' })
    log.warn({ scope: verdict.scope, address, retryAfter: verdict.retryAfterSeconds }, 'login throttled')
    return { outcome: 'throttled', retryAfterSeconds: verdict.retryAfterSeconds, scope: verdict.scope }
  }
  const user = await deps.users.verify(username, password)
  if (user === null) {
    deps.logins.inc({ result: 'invalid_credentials' })
    return { outcome: 'invalid_credentials' }
  }
  // Only failures use the budget. The user has proved who they are, so a store that fails
  // here does not stop the login: the attempt just stays counted until its window ends.
  await verdict.giveBack().catch((err: unknown) => {
    log.warn({ err: err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err) }, 'could not give a login attempt back')
  })
  return { outcome: 'ok', user }
}

/** The 429's body. */
export function throttledBody (check: { retryAfterSeconds: number, scope: string }, serverId: string): { error: 'too_many_attempts', message: string, retryAfter: number, servedBy: string } {
  return { error: 'too_many_attempts', message: `too many failed logins for this ${check.scope}: try again in ${check.retryAfterSeconds} s`, retryAfter: check.retryAfterSeconds, servedBy: serverId }
}
