import { isIPv4, isIPv6 } from 'node:net'
import type { AppConfig } from './config.ts'

export type ThrottleScope = 'account' | 'address'

export type ThrottleVerdict =
  /** Counted: check the password, and give the attempt back if it was right. */
  | { allowed: true, giveBack: () => Promise<void> }
  /** Not counted, and the password must not be checked. */
  | { allowed: false, retryAfterSeconds: number, scope: ThrottleScope }

/**
 * Login attempts per account and per client address in a fixed window
 * (LOGIN_THROTTLE_WINDOW_SECONDS) that starts with the first attempt counted.
 *
 * An attempt is counted before its password is checked, on both counters in one atomic step,
 * and only when neither is at its limit; otherwise nothing is counted and the login is refused
 * (429) until that counter's window ends, without checking the password. Checking first and
 * counting after the check let every attempt sent at the same moment through, whatever the
 * limit. A right password gives its attempt back, so the counters hold the failures (and the
 * checks still in flight), and a window starts in effect with the first failure. Refused attempts count nowhere: a lockout never outlasts the window
 * that caused it, so nobody can lock a user out for longer than that, though they can renew it
 * window after window (the price of any per-account limit; the per-address limit is what
 * stops them).
 *
 * The give-back applies only to the window the attempt was counted in: one that lands after
 * that window ended (a slow password check, a burst aimed at the window's edge) changes
 * nothing, where a plain decrement would open the next window one attempt short of zero.
 */
export interface LoginThrottle {
  count (account: string, address: string): Promise<ThrottleVerdict>
  close (): void
}

export type ThrottleLimits = Omit<AppConfig['loginThrottle'], 'store'>

export interface MemoryThrottleOptions {
  /** The clock, in milliseconds since the epoch; tests move their own. */
  now?: () => number
  /** The most counters kept; past it the oldest window goes first. */
  maxEntries?: number
}

interface Window { count: number, resetAt: number }

/** One process's counters: behind a round-robin balancer each server counts alone, so N servers allow N times the limit. */
export function createMemoryThrottle (limits: ThrottleLimits, options: MemoryThrottleOptions = {}): LoginThrottle {
  const { now = Date.now, maxEntries = 100_000 } = options
  const windowMs = limits.windowSeconds * 1000
  // Insertion order is window-start order, so expired entries sit at the front.
  const counters = new Map<string, Window>()
  const sweep = (at: number): void => {
    for (const [key, entry] of counters) {
      if (entry.resetAt > at) break
      counters.delete(key)
    }
  }
  const running = (key: string, at: number): Window | undefined => {
    const entry = counters.get(key)
    return entry !== undefined && entry.resetAt > at ? entry : undefined
  }
  const refusal = (entry: Window | undefined, max: number, scope: ThrottleScope, at: number): ThrottleVerdict | undefined =>
    entry === undefined || entry.count < max
      ? undefined
      : { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((entry.resetAt - at) / 1000)), scope }
  const open = (key: string, at: number): Window => {
    const entry = running(key, at)
    if (entry !== undefined) return entry
    counters.delete(key)
    // A flood of addresses cannot grow this without bound: the oldest window goes first.
    if (counters.size >= maxEntries) {
      const oldest = counters.keys().next().value
      if (oldest !== undefined) counters.delete(oldest)
    }
    const started = { count: 0, resetAt: at + windowMs }
    counters.set(key, started)
    return started
  }
  return {
    // Synchronous from the lookup to the increment: no other attempt can come in between.
    async count (account, address) {
      const at = now()
      sweep(at)
      const accountKey = `a:${account}`
      const addressKey = `i:${address}`
      const refused = refusal(running(accountKey, at), limits.maxFailuresPerAccount, 'account', at) ??
        refusal(running(addressKey, at), limits.maxFailuresPerAddress, 'address', at)
      if (refused !== undefined) return refused
      const counted = [[accountKey, open(accountKey, at)], [addressKey, open(addressKey, at)]] as const
      for (const [, entry] of counted) entry.count++
      return {
        allowed: true,
        // The very entries counted: once their window has ended they are out of the map or
        // expired, and giving back to them changes nothing. One back at zero goes.
        giveBack: async () => {
          for (const [key, entry] of counted) {
            entry.count--
            if (entry.count <= 0 && counters.get(key) === entry) counters.delete(key)
          }
        }
      }
    },
    close () { counters.clear() }
  }
}

/**
 * The key a client address is counted under. IPv4 (and IPv4-mapped IPv6) as is; IPv6 by its
 * /64, since one subscriber usually holds a whole /64 and could otherwise rotate addresses.
 */
export function addressKey (ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped?.[1] !== undefined) return mapped[1]
  if (isIPv4(ip) || !isIPv6(ip)) return ip
  const [head = '', tail = ''] = ip.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : []
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`
}
