import type { Authenticator, AuthenticatorFactory, Verdict } from './authenticator.ts'
import { isWellFormedSessionId, newSessionId } from './session-id.ts'

interface Session { user: string, expiresAt: number }

/**
 * Sessions in this process's memory: fast, and invisible to every other server,
 * which is the whole point of the demo. Every session has the same lifetime, so
 * the Map's insertion order is also expiry order: the sweep stops at the first
 * live session, and the oldest is the one evicted when the cap is reached.
 */
export const createMemoryAuthenticator: AuthenticatorFactory = async ({ config }) => {
  const ttlMs = config.sessionTtlSeconds * 1000
  const sessions = new Map<string, Session>()

  function sweep (now = Date.now()): void {
    for (const [id, session] of sessions) {
      if (session.expiresAt > now) break
      sessions.delete(id)
    }
  }
  const sweeper = setInterval(sweep, Math.min(ttlMs, 60_000))
  sweeper.unref()

  const authenticator: Authenticator & { size (): number } = {
    mode: 'memory',
    async login (user) {
      sweep()
      if (sessions.size >= config.memory.maxSessions) {
        const oldest = sessions.keys().next().value
        if (oldest !== undefined) sessions.delete(oldest)
      }
      const token = newSessionId()
      sessions.set(token, { user, expiresAt: Date.now() + ttlMs })
      return { token, expiresIn: config.sessionTtlSeconds }
    },
    async verify (token): Promise<Verdict> {
      if (!isWellFormedSessionId(token)) return { ok: false, reason: 'invalid_token' }
      const session = sessions.get(token)
      if (session === undefined) return { ok: false, reason: 'unknown_session' }
      if (session.expiresAt <= Date.now()) {
        sessions.delete(token)
        return { ok: false, reason: 'expired' }
      }
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
