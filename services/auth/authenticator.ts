import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { AppConfig } from '../config.ts'
import type { Metrics } from '../metrics.ts'
import type { AuthMode } from './modes.ts'

// The scripts (npm start, compare, the walkthrough) name the modes through this module.
export { AUTH_MODES, type AuthMode } from './modes.ts'

/** Why a credential was refused; the contract's `reason` values. */
export type RefusalReason = 'missing_token' | 'unknown_session' | 'expired' | 'invalid_token' | 'revoked'

export type Verdict =
  | {
    ok: true
    user: string
    /**
     * A new credential to send back in place of the one presented (the login cookie is set
     * again): cookie mode's sliding idle timeout, which lives in the value itself.
     */
    renewed?: Credential
  }
  | { ok: false, reason: RefusalReason }

export interface Credential {
  /** The opaque string the client presents: a session id, a JWT or a sealed cookie value. */
  token: string
  /** Seconds until the credential stops working. */
  expiresIn: number
}

/**
 * The one interface the modes share. The routes know nothing else about a mode: adding one is
 * one file that implements this plus one line in ./index.ts (and its name in ./modes.ts).
 */
export interface Authenticator {
  readonly mode: AuthMode
  /** Makes a new credential for a user who just proved who they are. */
  login (user: string): Promise<Credential>
  /** Says whose credential this is, or why it is refused. Throws SessionStoreUnavailableError when it cannot tell. */
  verify (token: string): Promise<Verdict>
  /** Ends the credential where this mode can. */
  logout (token: string): Promise<void>
  /** Whether the state this mode depends on can be reached now ('none' for modes that keep none elsewhere). */
  storeStatus (): 'up' | 'down' | 'none'
  /**
   * jwt mode with JWT_SIGNING=eddsa only: whether the last fetch of the issuer's JWKS worked
   * ('down': tokens are verified from the keys held). Not a store: no request waits on it.
   */
  jwksStatus? (): 'up' | 'down'
  close (): Promise<void>
}

export interface AuthenticatorContext {
  config: AppConfig
  log: FastifyBaseLogger
  /** The app's counters; a mode that talks to a store counts its commands here. */
  metrics: Metrics
  /** jwt mode registers @fastify/jwt on it; the others ignore it. */
  app: FastifyInstance
  /**
   * The clock the session and cookie modes' timeouts read, in milliseconds since the epoch;
   * Date.now unless a test moves its own. jwt ignores it: fast-jwt checks exp against the real time.
   */
  now?: () => number
}

export type AuthenticatorFactory = (context: AuthenticatorContext) => Promise<Authenticator>

/** The session store could not answer: the request gets a 503, never a 401 or a hang. */
export class SessionStoreUnavailableError extends Error {
  constructor (cause: unknown) {
    super('session store unavailable', { cause })
    this.name = 'SessionStoreUnavailableError'
  }
}

/**
 * REDIS_WAIT_REPLICAS: the write was made on the primary, but fewer replicas than asked for
 * acknowledged it in time, so a failover now could lose it. A 503 that says so
 * (session_store_not_replicated), never an answer that pretends it is durable.
 */
export class SessionStoreNotReplicatedError extends SessionStoreUnavailableError {
  constructor (acknowledged: number, wanted: number, timeoutMs: number) {
    super(new Error(`WAIT ${wanted} ${timeoutMs}: ${acknowledged} of ${wanted} replicas acknowledged the write in time`))
    this.name = 'SessionStoreNotReplicatedError'
    this.message = 'session store write not replicated'
  }
}
