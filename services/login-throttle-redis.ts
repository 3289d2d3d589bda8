import { randomBytes } from 'node:crypto'
import type { StoreClient } from './auth/redis-client.ts'
import type { LoginThrottle, ThrottleLimits, ThrottleScope } from './login-throttle.ts'

// Each counter is a hash: n, the attempts counted, and w, an id for the window, set when the
// window opens together with its expiry. Both scripts touch the two keys of one login at once:
// Redis runs a script with nothing in between (https://redis.io/docs/latest/develop/interact/programmability/eval-intro/),
// which is what makes "count only if neither is at its limit" one step for every server.

/** KEYS: the account's and the address's counters. ARGV: their limits, the window in ms, the id of a window this call opens. */
const COUNT = `
for i = 1, 2 do
  local n = tonumber(redis.call('HGET', KEYS[i], 'n') or '0')
  if n >= tonumber(ARGV[i]) then
    return {i, redis.call('PTTL', KEYS[i])}
  end
end
local windows = {}
for i = 1, 2 do
  if redis.call('HSETNX', KEYS[i], 'w', ARGV[4]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
  end
  redis.call('HINCRBY', KEYS[i], 'n', 1)
  windows[i] = redis.call('HGET', KEYS[i], 'w')
end
return {0, windows[1], windows[2]}
`

/**
 * KEYS: the two counters. ARGV: the ids of the windows the attempt was counted in; a window
 * since reopened has another. A counter back at zero goes: a right password leaves nothing.
 */
const GIVE_BACK = `
for i = 1, 2 do
  if redis.call('HGET', KEYS[i], 'w') == ARGV[i] and redis.call('HINCRBY', KEYS[i], 'n', -1) <= 0 then
    redis.call('DEL', KEYS[i])
  end
end
return 0
`

const SCOPES: Record<number, ThrottleScope> = { 1: 'account', 2: 'address' }

/**
 * Counters in Redis, shared by every server: the limits hold for the whole cluster. Each login
 * costs one script call, and a right password one more; a Redis that cannot answer within the
 * command timeout makes the login a 503 (SessionStoreUnavailableError), never an unthrottled one.
 */
export function createRedisThrottle (limits: ThrottleLimits, store: StoreClient, keyPrefix: string): LoginThrottle {
  const windowMs = limits.windowSeconds * 1000
  // Not the login-failures:* strings of earlier versions: during a rolling upgrade old and new
  // servers must not read each other's keys as the wrong type.
  const keys = (account: string, address: string): [string, string] =>
    [`${keyPrefix}login-attempts:account:${account}`, `${keyPrefix}login-attempts:address:${address}`]
  return {
    async count (account, address) {
      const [accountKey, addressKey] = keys(account, address)
      const reply = await store.run(async () => await store.redis.eval(COUNT, 2, accountKey, addressKey,
        limits.maxFailuresPerAccount, limits.maxFailuresPerAddress, windowMs, randomBytes(12).toString('base64url'))) as [number, number | string, string?]
      const [refusedBy, first, second] = reply
      const scope = SCOPES[refusedBy]
      if (scope !== undefined) {
        // PTTL is -1 only for a key without expiry, which this code never makes: the whole window then.
        const ms = typeof first === 'number' && first > 0 ? first : windowMs
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)), scope }
      }
      return {
        allowed: true,
        giveBack: async () => {
          await store.run(async () => await store.redis.eval(GIVE_BACK, 2, accountKey, addressKey, String(first), String(second)))
        }
      }
    },
    close () { store.close() }
  }
}
