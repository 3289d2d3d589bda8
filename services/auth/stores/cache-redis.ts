import type { Redis } from 'ioredis'
import { connectStore } from '../redis-client.ts'
import type { SessionStoreContext } from '../sessions.ts'
import { ENDED, type CachedSession, type SessionCache } from './cached.ts'

/** After a failed command the cache is left alone this long; then one read tries it again. */
export const CACHE_RETRY_AFTER_MS = 1000

/**
 * Sets the entry unless the key holds a logout's marker, in one step nothing can come between:
 * a read that found the row before a logout deleted it must not put the session back after the
 * logout's marker (cache-aside's classic race, which memcache at Facebook closes with leases:
 * Nishtala et al., "Scaling Memcache at Facebook", NSDI 2013, 3.2.1).
 */
const FILL_UNLESS_ENDED = `
if redis.call('GET', KEYS[1]) == ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

type FillingRedis = Redis & { fillUnlessEnded (key: string, entry: string, ttlMs: number, ended: string): Promise<number> }

/**
 * The shared cache: one Redis every server reads (REDIS_URL), so one entry per session and no
 * invalidation to send; a logout writes a marker over the entry that lives as long as an entry
 * could, plus the longest a read racing it can take. Its connection fails fast like redis mode's
 * (../redis-client.ts: no offline queue, REDIS_COMMAND_TIMEOUT_MS per command): a read whose
 * lookup fails asks the database instead, within that timeout plus the database's, and then the
 * cache is skipped for CACHE_RETRY_AFTER_MS, so a frozen Redis slows one read a second, not every
 * read. Counted in session_cache_commands_total as get, fill and end.
 */
export async function createRedisSessionCache ({ config, log, metrics }: SessionStoreContext): Promise<SessionCache> {
  const prefix = `${config.redis.keyPrefix}cache:`
  const endedTtlMs = config.sessionCache.ttlSeconds * 1000 + config.postgres.queryTimeoutMs + config.redis.commandTimeoutMs
  const client = await connectStore({ ...config.redis, log, name: 'session-cache' })
  const redis = client.redis as FillingRedis
  redis.defineCommand('fillUnlessEnded', { numberOfKeys: 1, lua: FILL_UNLESS_ENDED })

  let skipUntil = 0
  let probing = false
  async function run<T> (command: 'get' | 'fill' | 'end', send: () => Promise<T>): Promise<T> {
    metrics.sessionCacheCommands.inc({ command })
    try {
      const answer = await client.run(send)
      skipUntil = 0
      return answer
    } catch (err) {
      if (skipUntil === 0) log.warn({ err: (err as Error).cause ?? err }, `session cache unreachable: reads go to the database, the cache is tried again in ${CACHE_RETRY_AFTER_MS} ms`)
      skipUntil = performance.now() + CACHE_RETRY_AFTER_MS
      throw err
    } finally {
      probing = false
    }
  }

  return {
    kind: 'redis',
    usable () {
      if (client.status() !== 'up') return false
      if (skipUntil === 0) return true
      // Once the wait is over, one caller tries it (its command follows this answer); the others
      // keep going to the database until that one is answered.
      if (probing || performance.now() < skipUntil) return false
      probing = true
      return true
    },
    fillToken: () => 0,
    async get (id) {
      const value = await run('get', async () => await redis.get(prefix + id))
      if (value === null) return undefined
      if (value === ENDED) return ENDED
      const entry = parseEntry(value)
      if (entry === undefined) log.warn('a session cache key in Redis holds something this server did not write')
      return entry
    },
    async fill (id, session, ttlMs) {
      await run('fill', async () => await redis.fillUnlessEnded(prefix + id, JSON.stringify(session), Math.ceil(ttlMs), ENDED))
    },
    async end (id) {
      await run('end', async () => await redis.set(prefix + id, ENDED, 'PX', endedTtlMs))
    },
    async close () {
      client.close()
    }
  }
}

function parseEntry (value: string): CachedSession | undefined {
  try {
    const { user, expiresAt, idleUntil, renewedAt } = JSON.parse(value) as Partial<Record<keyof CachedSession, unknown>>
    if (typeof user === 'string' && user !== '' && typeof expiresAt === 'number' && typeof idleUntil === 'number' && typeof renewedAt === 'number') return { user, expiresAt, idleUntil, renewedAt }
  } catch {}
  return undefined
}
