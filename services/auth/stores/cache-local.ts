import { LRUCache } from 'lru-cache'
import type { CachedSession, SessionCache } from './cached.ts'

export interface LocalSessionCache extends SessionCache {
  /** A logout elsewhere, heard of (./postgres-listener.ts): forget this session. */
  drop (id: string): void
  /** Forget every session: invalidations may have been missed. */
  flush (): void
}

export interface LocalSessionCacheOptions {
  /** SESSION_CACHE_MAX_ENTRIES: past it the least recently used entry goes. */
  maxEntries: number
  ttlMs: number
  /** The clock the session rules read (an entry's TTL counts on it too, so tests move it). */
  now: () => number
  /** Whether its invalidations can be trusted now (the listener is connected), or always with none. */
  usable: () => boolean
}

/**
 * A bounded cache in this process (lru-cache: O(1) LRU with a TTL per entry), one per app
 * server: nothing to ask over the network, and nothing the other servers see. A logout anywhere
 * else reaches it only through `drop`, and only if someone calls it.
 *
 * Every invalidation moves a generation on; a read that went to the store before it may not
 * fill the cache after it (`fillToken`). Without that, a read racing a logout on another server
 * (it finds the row, the DELETE commits, the notification arrives and drops nothing, then the
 * read's answer is cached) would keep the ended session here for a whole TTL. One counter for
 * the whole cache, not one per session: logouts are rare next to reads, and a fill lost to
 * another session's logout costs one more database read, never a wrong answer.
 */
export function createLocalSessionCache (options: LocalSessionCacheOptions): LocalSessionCache {
  const lru = new LRUCache<string, CachedSession>({
    max: options.maxEntries,
    ttl: options.ttlMs,
    // The session clock, read on every check (lru-cache would otherwise keep one reading for a
    // millisecond of real time, and a test's clock jumps in between).
    perf: { now: options.now },
    ttlResolution: 0
  })
  let generation = 0
  const forget = (id: string): void => {
    generation++
    lru.delete(id)
  }
  return {
    kind: 'local',
    usable: options.usable,
    fillToken: () => generation,
    async get (id) {
      return lru.get(id)
    },
    async fill (id, session, ttlMs, token) {
      if (token === generation) lru.set(id, session, { ttl: ttlMs })
    },
    async end (id) {
      forget(id)
    },
    drop: forget,
    flush () {
      generation++
      lru.clear()
    },
    async close () {
      lru.clear()
    }
  }
}
