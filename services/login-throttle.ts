import { isIPv4, isIPv6 } from 'node:net'
import type { AppConfig } from './config.ts'
import type { StoreClient } from './auth/redis-client.ts'

export type ThrottleVerdict = { allowed: true } | { allowed: false, retryAfterSeconds: number, scope: 'account' | 'address' }

/**
 * Counts failed logins per account and per client address in a fixed window
 * (LOGIN_THROTTLE_WINDOW_SECONDS). Past the limit, logins for that account or from that
 * address are refused (429) until the window ends, without checking the password, so a
 * guesser gets a few tries a window and the password hash costs nothing extra. Refused
 * attempts are not counted: a lockout never outlasts the window that caused it, so nobody
 * can lock a user out for longer than that, though they can renew it window after window
 * (the price of any per-account limit; the per-address limit is what stops them).
 */
export interface LoginThrottle {
  check (account: string, address: string): Promise<ThrottleVerdict>
  recordFailure (account: string, address: string): Promise<void>
  close (): void
}

type Limits = AppConfig['loginThrottle']

/** One process's counters: behind a round-robin balancer each server counts alone, so N servers allow N times the limit. */
export function createMemoryThrottle (limits: Limits, maxEntries = 100_000): LoginThrottle {
  const windowMs = limits.windowSeconds * 1000
  // Insertion order is window-start order, so expired entries sit at the front.
  const counters = new Map<string, { count: number, resetAt: number }>()
  const sweep = (now: number): void => {
    for (const [key, entry] of counters) {
      if (entry.resetAt > now) break
      counters.delete(key)
    }
  }
  const verdictFor = (key: string, max: number, scope: 'account' | 'address', now: number): ThrottleVerdict | undefined => {
    const entry = counters.get(key)
    if (entry === undefined || entry.resetAt <= now || entry.count < max) return undefined
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((entry.resetAt - now) / 1000)), scope }
  }
  const bump = (key: string, now: number): void => {
    const entry = counters.get(key)
    if (entry !== undefined && entry.resetAt > now) {
      entry.count++
      return
    }
    counters.delete(key)
    // A flood of addresses cannot grow this without bound: the oldest window goes first.
    if (counters.size >= maxEntries) {
      const oldest = counters.keys().next().value
      if (oldest !== undefined) counters.delete(oldest)
    }
    counters.set(key, { count: 1, resetAt: now + windowMs })
  }
  return {
    async check (account, address) {
      const now = Date.now()
      sweep(now)
      return verdictFor(`a:${account}`, limits.maxFailuresPerAccount, 'account', now) ??
        verdictFor(`i:${address}`, limits.maxFailuresPerAddress, 'address', now) ??
        { allowed: true }
    },
    async recordFailure (account, address) {
      const now = Date.now()
      bump(`a:${account}`, now)
      bump(`i:${address}`, now)
    },
    close () { counters.clear() }
  }
}

/** Counters in Redis, shared by every server: the limits hold for the whole cluster. */
export function createRedisThrottle (limits: Limits, store: StoreClient, keyPrefix: string): LoginThrottle {
  const accountKey = (account: string): string => `${keyPrefix}login-failures:account:${account}`
  const addressKey = (address: string): string => `${keyPrefix}login-failures:address:${address}`
  return {
    async check (account, address) {
      const keys = [accountKey(account), addressKey(address)] as const
      const [a, i] = await store.run(async () => await store.redis.mget(keys[0], keys[1]))
      const scope = Number(a ?? 0) >= limits.maxFailuresPerAccount ? 'account' : Number(i ?? 0) >= limits.maxFailuresPerAddress ? 'address' : undefined
      if (scope === undefined) return { allowed: true }
      const ms = await store.run(async () => await store.redis.pttl(scope === 'account' ? keys[0] : keys[1]))
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((ms > 0 ? ms : limits.windowSeconds * 1000) / 1000)), scope }
    },
    async recordFailure (account, address) {
      // SET NX EX starts a window only if none is running; INCR keeps the key's expiry.
      await store.run(async () => await store.redis.multi()
        .set(accountKey(account), 0, 'EX', limits.windowSeconds, 'NX').incr(accountKey(account))
        .set(addressKey(address), 0, 'EX', limits.windowSeconds, 'NX').incr(addressKey(address))
        .exec())
    },
    close () { store.close() }
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
