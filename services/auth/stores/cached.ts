import { SessionStoreUnavailableError } from '../authenticator.ts'
import type { FoundSession, SessionStore, SessionStoreContext, SessionStoreFactory } from '../sessions.ts'

/**
 * A cache in front of another store: a decorator, not a mode (postgres mode with SESSION_CACHE
 * set). A read asks the cache first and the store on a miss, filling the cache (cache-aside);
 * the store stays the truth, and the cache only saves asking it.
 *
 * What makes it more than a Map in front of a table:
 * - Renewal. The store's read also renews the idle end (UPDATE ... RETURNING), so a read
 *   answered from the cache renews nothing. A cached session goes back to the store once its
 *   renewal is due (`renewEveryMs` after this server last asked, SESSION_RENEW_EVERY_SECONDS):
 *   the idle end the store keeps is then at most that stale, and a session ends up to
 *   `renewEveryMs` before SESSION_IDLE_SECONDS after its last use, never after (the cache never
 *   answers past the idle end it was given, and the store's moves it only forward).
 * - The absolute end is checked on every read, from the cached value: it stays exact.
 * - The store must be answering. A hit is served only while the store is up and was heard from
 *   within `leaseMs` (a quiet server pings it to keep that true); past that, the read asks it.
 *   So while the database is down or frozen every request is the 503 it is without a cache, even
 *   for a session the cache holds: a server that answered from its cache then could not record a
 *   logout (the DELETE fails), and would go on accepting a session its user had tried to end.
 * - Logout deletes in the store first, then in the cache. The other order leaves a window in
 *   which a read on any server misses, finds the row still there, and fills the cache again: the
 *   logged-out session would then be served for a whole TTL. This order leaves only the window
 *   between the two, and a failure between them is a 503 the client can retry.
 * - A read that began before a logout must not fill the cache after it: the shared cache keeps
 *   the logout as a marker that a fill cannot overwrite, the local one drops fills begun before
 *   any invalidation that came while they were in flight (`fillToken`).
 */

/** What a cache keeps for a session: what the store said when this server last asked it. */
export interface CachedSession {
  user: string
  /** The absolute end, ms since the epoch. */
  expiresAt: number
  /** The idle end the store gave at `renewedAt`. Another server may have moved it on since, never back. */
  idleUntil: number
  /** When the store last read and renewed the session for this entry. */
  renewedAt: number
}

/** What a cache answers for a session it knows was ended (a logout's marker). */
export const ENDED = 'ended'

export interface SessionCache {
  readonly kind: 'local' | 'redis'
  /** Whether to use it now: false while it is unreachable, or while it may have missed invalidations. */
  usable (): boolean
  /** Taken before a read goes to the store, and handed to `fill`: a fill is dropped if a logout may have come meanwhile. */
  fillToken (): number
  /** Throws when the cache cannot answer (the read then asks the store). */
  get (id: string): Promise<CachedSession | typeof ENDED | undefined>
  fill (id: string, session: CachedSession, ttlMs: number, token: number): Promise<void>
  /** Forgets the session, or marks it ended; throws when it cannot (the logout is then a 503). */
  end (id: string): Promise<void>
  close (): Promise<void>
}

export interface CachedStoreOptions {
  /** How long an entry lives at most (SESSION_CACHE_TTL_SECONDS). */
  ttlMs: number
  /** How often a cached session renews its idle end in the store, at most. */
  renewEveryMs: number
  /** A hit needs the store heard from within this long, in real time (PG_QUERY_TIMEOUT_MS). */
  leaseMs: number
  /** The idle timeout, for an entry whose store gave no idle end. */
  idleMs: number
  metrics: SessionStoreContext['metrics']
  log: SessionStoreContext['log']
  /** Run at close, after the cache and before the store (a listener's connection). */
  onClose?: () => Promise<void>
}

type Lookup = 'hit' | 'miss' | 'renew' | 'lease' | 'ended' | 'bypass' | 'error'

/** A store the cache can put in front of: one that can be asked whether it answers, and nothing else. */
export type PingableStore = SessionStore & { ping (): Promise<void> }

export function createCachedStore (inner: PingableStore, cache: SessionCache, options: CachedStoreOptions): SessionStore {
  const { ttlMs, renewEveryMs, leaseMs, idleMs, metrics, log } = options
  let heardAt = -Infinity
  let pinging = false
  const count = (result: Lookup): void => { metrics.sessionCacheLookups.inc({ cache: cache.kind, result }) }

  /**
   * A call to the store; its answer renews the lease. Its failure is the store's 503, as without
   * a cache. The lease runs on real time, not the session clock: it is about the database
   * answering, not about a session's age.
   */
  async function ask<T> (call: () => Promise<T>): Promise<T> {
    const answer = await call()
    heardAt = performance.now()
    return answer
  }

  // The lease is kept by the store's own answers; a server whose reads are all hits pings it
  // (SELECT 1) once it has not been heard from for three quarters of the lease: two or three a
  // second per server at the default 500 ms, whatever the load. A read never has to find out
  // itself unless the database stopped answering, and the lease never picks some session's read
  // to go to the database instead: a stale entry lives its TTL or its renewal interval, as said.
  const prober = setInterval(() => {
    if (pinging || performance.now() - heardAt < leaseMs * 0.75) return
    pinging = true
    ask(async () => { await inner.ping() }).catch(() => {}).finally(() => { pinging = false })
  }, Math.max(5, leaseMs / 10))
  prober.unref()

  /** Fills are not awaited: a request never waits for the cache after the store has answered. */
  function fill (id: string, session: Pick<CachedSession, 'user' | 'expiresAt'> & { idleUntil?: number | undefined }, at: number, token: number): void {
    const entry: CachedSession = { user: session.user, expiresAt: session.expiresAt, idleUntil: session.idleUntil ?? Math.min(at + idleMs, session.expiresAt), renewedAt: at }
    const ttl = Math.min(ttlMs, entry.expiresAt - at)
    if (ttl <= 0) return
    cache.fill(id, entry, ttl, token).catch((err: unknown) => { log.debug({ err }, 'session cache fill failed') })
  }

  return {
    async create (id, session, at) {
      await ask(async () => { await inner.create(id, session, at) })
      // The login's server is likely not the next request's, but a shared cache serves them all.
      if (cache.usable()) fill(id, { ...session, idleUntil: Math.min(at + idleMs, session.expiresAt) }, at, cache.fillToken())
    },

    async touch (id, at): Promise<FoundSession | undefined> {
      if (inner.status() !== 'up' || !cache.usable()) {
        count('bypass')
        return await ask(async () => await inner.touch(id, at))
      }
      const token = cache.fillToken()
      let cached: CachedSession | typeof ENDED | undefined
      try {
        cached = await cache.get(id)
      } catch (err) {
        count('error')
        log.debug({ err }, 'session cache unreadable: asking the store')
        return await ask(async () => await inner.touch(id, at))
      }
      if (cached === ENDED) {
        count('ended')
        return undefined
      }
      if (cached !== undefined) {
        const answer = { user: cached.user, expiresAt: cached.expiresAt, idleUntil: cached.idleUntil }
        // Past its absolute end: the authenticator says expired and deletes it, wherever it is.
        if (cached.expiresAt <= at) {
          count('hit')
          return answer
        }
        const leased = performance.now() - heardAt < leaseMs
        if (leased && cached.idleUntil > at && at - cached.renewedAt < renewEveryMs) {
          count('hit')
          return answer
        }
        count(leased ? 'renew' : 'lease')
      } else {
        count('miss')
      }
      const found = await ask(async () => await inner.touch(id, at))
      if (found === undefined) {
        // Ended on another server without this cache hearing of it (SESSION_CACHE_INVALIDATION=none).
        if (cached !== undefined) cache.end(id).catch((err: unknown) => { log.debug({ err }, 'session cache: could not forget an ended session') })
        return undefined
      }
      if (found.expiresAt > at && (found.idleUntil ?? Infinity) > at) fill(id, found, at, token)
      return found
    },

    async delete (id) {
      await ask(async () => { await inner.delete(id) })
      try {
        await cache.end(id)
      } catch (err) {
        // The row is gone, but the cache may still answer for it: the client should log out again.
        throw new SessionStoreUnavailableError(err)
      }
    },

    status: () => inner.status(),

    async close () {
      clearInterval(prober)
      await cache.close()
      await options.onClose?.()
      await inner.close()
    }
  }
}

/** The channel a DELETE notifies and every local cache listens on (SESSION_CACHE_INVALIDATION=pubsub). */
export const ENDED_SESSIONS_CHANNEL = 'auth_cluster_session_ended'

/**
 * postgres mode's store (./postgres.ts) behind the cache SESSION_CACHE names, or as it is with
 * `none`. Each cache's code is loaded only when chosen.
 */
export const createPostgresStoreWithCache: SessionStoreFactory = async (context) => {
  const { config, log, metrics, now } = context
  const { createPostgresSessions } = await import('./postgres.ts')
  const { kind, ttlSeconds, maxEntries, renewEveryMs, invalidation } = config.sessionCache
  if (kind === 'none') return await createPostgresSessions(context)
  const options = { ttlMs: ttlSeconds * 1000, renewEveryMs, leaseMs: config.postgres.queryTimeoutMs, idleMs: config.sessionIdleSeconds * 1000, metrics, log }

  if (kind === 'redis') {
    const { createRedisSessionCache } = await import('./cache-redis.ts')
    const cache = await createRedisSessionCache(context)
    return createCachedStore(await createPostgresSessions(context), cache, options)
  }

  const { createLocalSessionCache } = await import('./cache-local.ts')
  if (invalidation === 'none') {
    log.warn('SESSION_CACHE=local with SESSION_CACHE_INVALIDATION=none: a logout on another server is not seen here until the cached entry expires')
    const cache = createLocalSessionCache({ maxEntries, ttlMs: options.ttlMs, now, usable: () => true })
    return createCachedStore(await createPostgresSessions(context), cache, options)
  }
  const { listenForEndedSessions } = await import('./postgres-listener.ts')
  let listening = (): boolean => false
  const cache = createLocalSessionCache({ maxEntries, ttlMs: options.ttlMs, now, usable: () => listening() })
  const inner = await createPostgresSessions(context, { notifyEnded: ENDED_SESSIONS_CHANNEL })
  const listener = await listenForEndedSessions({
    url: config.postgres.url,
    channel: ENDED_SESSIONS_CHANNEL,
    timeoutMs: config.postgres.queryTimeoutMs,
    name: `auth-cluster ${config.serverId} invalidations`,
    log,
    onEnded: (id) => {
      metrics.sessionCacheInvalidations.inc({ kind: 'session' })
      cache.drop(id)
    },
    onListening: () => {
      // Whatever was ended while this server was not listening was never heard of here.
      metrics.sessionCacheInvalidations.inc({ kind: 'flush' })
      cache.flush()
      metrics.sessionCacheListening.set(1)
    },
    onLost: () => { metrics.sessionCacheListening.set(0) }
  })
  listening = listener.listening
  return createCachedStore(inner, cache, { ...options, onClose: async () => { await listener.close() } })
}
