import type { AuthMode } from '../../services/auth/authenticator.ts'
import type { SessionCacheKind } from '../../services/config.ts'

/**
 * What compare can measure: the auth modes, and variants that show what a choice inside a mode
 * costs: jwt with a revocation list (`jwt-revocation`: JWT_REVOCATION=redis, a Redis lookup on
 * every request), jwt signed by an issuer with Ed25519 (`jwt-eddsa`: JWT_SIGNING=eddsa, the app
 * servers verify with its JWKS), and postgres with a cache in front of the sessions table
 * (`postgres+redis-cache`, shared; `postgres+local-cache`, one per server, told of logouts over
 * PostgreSQL NOTIFY as the launcher sets it up).
 */
export const COMPARE_MODES = ['memory', 'redis', 'postgres', 'jwt', 'jwt-revocation', 'cookie', 'postgres+redis-cache', 'postgres+local-cache', 'jwt-eddsa'] as const
export type CompareMode = typeof COMPARE_MODES[number]

/** What it measures unless --modes says otherwise: one row per answer the project compares; the variants when asked. */
export const DEFAULT_COMPARE_MODES: readonly CompareMode[] = ['memory', 'redis', 'postgres', 'jwt', 'jwt-revocation', 'cookie']

/** The AUTH_MODE a compare mode runs its servers in. */
export function authModeOf (mode: CompareMode): AuthMode {
  switch (mode) {
    case 'jwt-revocation':
    case 'jwt-eddsa':
      return 'jwt'
    case 'postgres+redis-cache':
    case 'postgres+local-cache':
      return 'postgres'
    default:
      return mode
  }
}

/** postgres mode's SESSION_CACHE for a compare mode; undefined outside postgres. */
export function sessionCacheOf (mode: string): SessionCacheKind | undefined {
  if (mode === 'postgres') return 'none'
  if (mode === 'postgres+redis-cache') return 'redis'
  if (mode === 'postgres+local-cache') return 'local'
  return undefined
}

/** Whether the mode's servers ask Redis on every request (as the session store, a revocation list or a cache). */
export function usesRedis (mode: string): boolean {
  return mode === 'redis' || mode === 'jwt-revocation' || mode === 'postgres+redis-cache'
}

/** Whether the mode's servers keep sessions in PostgreSQL. */
export function usesPostgres (mode: string): boolean {
  return sessionCacheOf(mode) !== undefined
}

/** The store whose round trips session_store_commands_total counts in this mode; null when there is none. */
export function storeOf (mode: string): 'redis' | 'postgres' | null {
  if (usesPostgres(mode)) return 'postgres'
  return mode === 'redis' || mode === 'jwt-revocation' ? 'redis' : null
}
