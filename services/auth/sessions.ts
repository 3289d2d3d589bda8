import type { Authenticator, AuthenticatorContext, AuthenticatorFactory, Verdict } from './authenticator.ts'
import type { AuthMode } from './modes.ts'
import { isWellFormedSessionId, newSessionId } from './session-id.ts'

/** What a store keeps for a session. */
export interface Session {
  user: string
  /** The absolute end, SESSION_TTL_SECONDS after login, in milliseconds since the epoch. */
  expiresAt: number
}

/** A session as `touch` found it, before that touch renewed it. */
export interface FoundSession extends Session {
  /**
   * When it would end unused, as it stood before this touch, or, from a store that renews in the
   * same statement (PostgreSQL's UPDATE ... RETURNING), after it: a window already over is never
   * renewed, so either way it is at or before `at` exactly when the session ended idle. Absent
   * from a store that drops a session left idle by itself (Redis's EX): there a session found is
   * one still in its window.
   */
  idleUntil?: number
}

/**
 * Where sessions live; the rules (which session is refused, and why) are all in
 * createSessionAuthenticator below. Each method is at most one round trip to the store.
 */
export interface SessionStore {
  /** Keeps a new session, unused since `at`. */
  create (id: string, session: Session, at: number): Promise<void>
  /**
   * Reads a session and renews its idle window from `at`, in one round trip (Redis GETEX,
   * PostgreSQL UPDATE ... RETURNING). A session already past its idle window is returned as
   * found and not renewed, so that a request racing this one finds it ended too. Undefined
   * when the store holds no session under `id`.
   */
  touch (id: string, at: number): Promise<FoundSession | undefined>
  delete (id: string): Promise<void>
  /** Whether the store can be reached now; 'none' for one inside this process. */
  status (): 'up' | 'down' | 'none'
  close (): Promise<void>
  /** How many sessions it holds, where counting is free (scripts/compare measures memory per session with it). */
  size? (): number
}

/** What a store is built from: the authenticator's context, the clock resolved. */
export type SessionStoreContext = Omit<AuthenticatorContext, 'now'> & { now: () => number }
export type SessionStoreFactory = (context: SessionStoreContext) => Promise<SessionStore>

/**
 * Server-side sessions over any store: an opaque 256-bit id (./session-id.ts), new at every
 * login, looked up on every request. A session ends at whichever comes first: SESSION_TTL_SECONDS
 * after login (absolute) or SESSION_IDLE_SECONDS after its last use (idle), both decided here on
 * the server whatever the cookie says (OWASP Session Management Cheat Sheet, "Session Expiration").
 *
 * A token that could never have been issued is invalid_token, with no lookup; one the store does
 * not hold is unknown_session (never issued here, logged out, swept, or dropped by the store's own
 * expiry); one found past either timeout is expired, and deleted, so it reads as unknown after.
 */
export function createSessionAuthenticator (mode: AuthMode, createStore: SessionStoreFactory): AuthenticatorFactory {
  return async (context) => {
    const { config } = context
    const now = context.now ?? Date.now
    const store = await createStore({ ...context, now })
    const ttlMs = config.sessionTtlSeconds * 1000

    const authenticator: Authenticator & { size?: () => number } = {
      mode,
      async login (user) {
        const at = now()
        const token = newSessionId()
        await store.create(token, { user, expiresAt: at + ttlMs }, at)
        return { token, expiresIn: config.sessionTtlSeconds }
      },
      async verify (token): Promise<Verdict> {
        if (!isWellFormedSessionId(token)) return { ok: false, reason: 'invalid_token' }
        const at = now()
        const session = await store.touch(token, at)
        if (session === undefined) return { ok: false, reason: 'unknown_session' }
        if (session.expiresAt <= at || (session.idleUntil !== undefined && session.idleUntil <= at)) {
          await store.delete(token)
          return { ok: false, reason: 'expired' }
        }
        return { ok: true, user: session.user }
      },
      async logout (token) {
        if (!isWellFormedSessionId(token)) return
        await store.delete(token)
      },
      storeStatus: () => store.status(),
      async close () {
        await store.close()
      }
    }
    if (store.size !== undefined) authenticator.size = store.size
    return authenticator
  }
}
