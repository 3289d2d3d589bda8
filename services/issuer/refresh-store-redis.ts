import type { StoreClient } from '../auth/redis-client.ts'
import type { RefreshLifetimes, RefreshTokenStore } from './refresh-tokens.ts'

// Two kinds of key, both under REDIS_KEY_PREFIX:
//   refresh:token:<sha256>  the family a token (current or retired) belongs to; it lives as long
//                           as the family could (the absolute lifetime), so a retired token is
//                           recognised, and its family revoked, for as long as that matters;
//   refresh:family:<id>     a hash: user, current (the current token's hash), absExp and
//                           lastUsed (ms), revoked ("1" once revoked); it expires by itself after
//                           the idle lifetime, renewed at each refresh, never past absExp.
// Each script runs in Redis with nothing in between (https://redis.io/docs/latest/develop/interact/programmability/eval-intro/):
// that is what makes "rotate only if current" one step for every issuer, so two refreshes with
// one token cannot both succeed. The family key is read from the token key inside the script,
// which a single Redis (or one with Sentinels) allows and Redis Cluster would not.

/** KEYS: the presented token's key. ARGV: the next token's key, now, the idle ms, the family key prefix, the presented hash, the next hash. */
const ROTATE = `
local family = redis.call('GET', KEYS[1])
if not family then return {'unknown'} end
local fkey = ARGV[4] .. family
local f = redis.call('HMGET', fkey, 'user', 'current', 'absExp', 'lastUsed', 'revoked')
local user = f[1]
if not user then return {'expired'} end
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local absExp = tonumber(f[3])
if now >= absExp or now >= tonumber(f[4]) + idle then return {'expired'} end
if f[2] ~= ARGV[5] then
  redis.call('HSET', fkey, 'revoked', '1')
  return {'reused', user, family}
end
if f[5] == '1' then return {'revoked'} end
local left = absExp - now
redis.call('SET', ARGV[1], family, 'PX', left)
redis.call('HSET', fkey, 'current', ARGV[6], 'lastUsed', now)
redis.call('PEXPIRE', fkey, math.min(idle, left))
return {'rotated', user, family, tostring(absExp)}
`

/** KEYS: a family key, or a token key (ARGV[1] then holds the family key prefix). Marks the family revoked, keeping its expiry. */
const REVOKE = `
local fkey = KEYS[1]
if ARGV[1] then
  local family = redis.call('GET', KEYS[1])
  if not family then return 0 end
  fkey = ARGV[1] .. family
end
if redis.call('EXISTS', fkey) == 0 then return 0 end
redis.call('HSET', fkey, 'revoked', '1')
return 1
`

export interface RedisRefreshStoreOptions {
  lifetimes: RefreshLifetimes
  keyPrefix: string
  /** Each command sent, by name (session_store_commands_total). */
  onCommand?: (command: 'eval' | 'multi') => void
}

/**
 * Refresh token families in Redis; a Redis that cannot answer in time is a SessionStoreUnavailableError (a 503).
 * Every write is one that must outlive a failover, so each goes through store.replicated: with
 * REDIS_WAIT_REPLICAS it is answered only once the replicas hold it, or refused by name (a 503
 * session_store_not_replicated). A rotation lost in a failover would make the retired token the
 * current one again on the promoted replica, and refuse the one the client was just given.
 */
export function createRedisRefreshStore (store: StoreClient, options: RedisRefreshStoreOptions): RefreshTokenStore {
  const { lifetimes, keyPrefix } = options
  const onCommand = options.onCommand ?? (() => {})
  const tokenKey = (hash: string): string => `${keyPrefix}refresh:token:${hash}`
  const familyPrefix = `${keyPrefix}refresh:family:`

  return {
    async create (family, user, hash, at) {
      const absExp = at + lifetimes.absoluteMs
      onCommand('multi')
      await store.replicated(async (connection) => {
        const replies = await connection.multi()
          .hset(`${familyPrefix}${family}`, { user, current: hash, absExp: String(absExp), lastUsed: String(at) })
          .pexpire(`${familyPrefix}${family}`, Math.min(lifetimes.idleMs, lifetimes.absoluteMs))
          .set(tokenKey(hash), family, 'PX', lifetimes.absoluteMs)
          .exec()
        const failed = replies?.find(([err]) => err !== null)
        if (replies === null || failed !== undefined) throw failed?.[0] ?? new Error('MULTI was aborted')
      })
    },
    async rotate (hash, nextHash, at) {
      onCommand('eval')
      const reply = await store.replicated(async (connection) => await connection.eval(ROTATE, 1, tokenKey(hash),
        tokenKey(nextHash), at, lifetimes.idleMs, familyPrefix, hash, nextHash)) as [string, string?, string?, string?]
      const [outcome, user = '', family = '', expiresAt] = reply
      if (outcome === 'rotated') return { outcome, user, family, expiresAt: Number(expiresAt) }
      if (outcome === 'reused') return { outcome, user, family }
      if (outcome === 'revoked' || outcome === 'expired' || outcome === 'unknown') return { outcome }
      throw new Error(`unexpected answer from the refresh script: ${JSON.stringify(reply)}`)
    },
    async revokeByToken (hash) {
      onCommand('eval')
      await store.replicated(async (connection) => await connection.eval(REVOKE, 1, tokenKey(hash), familyPrefix))
    },
    async revokeFamily (family) {
      onCommand('eval')
      await store.replicated(async (connection) => await connection.eval(REVOKE, 1, `${familyPrefix}${family}`))
    },
    status: () => store.status(),
    async close () {
      store.close()
    }
  }
}
