import type { FoundSession, SessionStoreFactory } from '../sessions.ts'

interface Entry { user: string, expiresAt: number, idleUntil: number }

/**
 * Sessions in this process's memory: fast, and invisible to every other server, which is the
 * whole point of the demo. Each use moves a session to the end of the Map, so insertion order is
 * last-use order: the sweep stops at the first session still in its idle window, and the least
 * recently used is the one evicted when MAX_MEMORY_SESSIONS is reached.
 */
export const createMemoryStore: SessionStoreFactory = async ({ config, now }) => {
  const idleMs = config.sessionIdleSeconds * 1000
  const sessions = new Map<string, Entry>()

  function sweep (at: number): void {
    for (const [id, session] of sessions) {
      if (session.idleUntil > at) break
      sessions.delete(id)
    }
  }
  const sweeper = setInterval(() => { sweep(now()) }, Math.min(idleMs, 60_000))
  sweeper.unref()

  return {
    async create (id, { user, expiresAt }, at) {
      sweep(at)
      if (sessions.size >= config.memory.maxSessions) {
        const oldest = sessions.keys().next().value
        if (oldest !== undefined) sessions.delete(oldest)
      }
      sessions.set(id, { user, expiresAt, idleUntil: at + idleMs })
    },
    async touch (id, at) {
      const session = sessions.get(id)
      if (session === undefined) return undefined
      const found: FoundSession = { user: session.user, expiresAt: session.expiresAt, idleUntil: session.idleUntil }
      if (session.idleUntil > at) {
        sessions.delete(id)
        session.idleUntil = at + idleMs
        sessions.set(id, session)
      }
      return found
    },
    async delete (id) {
      sessions.delete(id)
    },
    status: () => 'none',
    size: () => sessions.size,
    async close () {
      clearInterval(sweeper)
      sessions.clear()
    }
  }
}
