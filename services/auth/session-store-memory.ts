import type { Authenticator, AuthenticatorFactory, Verdict } from './authenticator.ts'
import { isWellFormedSessionId, newSessionId } from './session-id.ts'

interface Session { user: string, lastSeen: number, expiresAt: number }

/**
 * Sessions in this process's memory: fast, and invisible to every other server, which is
 * the whole point of the demo. A session ends at whichever comes first: SESSION_TTL_SECONDS
 * after login (absolute) or SESSION_IDLE_SECONDS after its last use (idle), both enforced
 * here on the server whatever the cookie says. Each use moves the session to the end of the
 * Map, so insertion order is last-use order: the sweep stops at the first session still in
 * its idle window, and the least recently used is the one evicted when the cap is reached.
 */
export const createMemoryAuthenticator: AuthenticatorFactory = async ({ config, now = Date.now }) => {
  const ttlMs = config.sessionTtlSeconds * 1000
  const idleMs = config.sessionIdleSeconds * 1000
  const sessions = new Map<string, Session>()

  function sweep (at = now()): void {
    for (const [id, session] of sessions) {
      if (session.lastSeen + idleMs > at) break
      sessions.delete(id)
    }
  }
  const sweeper = setInterval(() => { sweep() }, Math.min(idleMs, 60_000))
  sweeper.unref()

  const authenticator: Authenticator & { size (): number } = {
    mode: 'memory',
    async login (user) {
      const at = now()
      sweep(at)
      if (sessions.size >= config.memory.maxSessions) {
        const oldest = sessions.keys().next().value
        if (oldest !== undefined) sessions.delete(oldest)
      }
      const token = newSessionId()
      sessions.set(token, { user, lastSeen: at, expiresAt: at + ttlMs })
      return { token, expiresIn: config.sessionTtlSeconds }
    },
    async verify (token): Promise<Verdict> {
      if (!isWellFormedSessionId(token)) return { ok: false, reason: 'invalid_token' }
      const session = sessions.get(token)
      if (session === undefined) return { ok: false, reason: 'unknown_session' }
      const at = now()
      sessions.delete(token)
      if (session.expiresAt <= at || session.lastSeen + idleMs <= at) return { ok: false, reason: 'expired' }
      session.lastSeen = at
      sessions.set(token, session)
      return { ok: true, user: session.user }
    },
    async logout (token) {
      sessions.delete(token)
    },
    storeStatus: () => 'none',
    size: () => sessions.size,
    async close () {
      clearInterval(sweeper)
      sessions.clear()
    }
  }
  return authenticator
}
