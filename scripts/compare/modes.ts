import type { AuthMode } from '../../services/auth/authenticator.ts'

/**
 * What compare measures: the three auth modes, and jwt with a revocation list
 * (`jwt-revocation`: AUTH_MODE=jwt with JWT_REVOCATION=redis), whose row shows what a
 * revocable JWT costs on every request.
 */
export const COMPARE_MODES = ['memory', 'redis', 'jwt', 'jwt-revocation'] as const
export type CompareMode = typeof COMPARE_MODES[number]

/** The AUTH_MODE a compare mode runs its servers in. */
export function authModeOf (mode: CompareMode): AuthMode {
  return mode === 'jwt-revocation' ? 'jwt' : mode
}

/** Whether the mode's servers ask Redis on every request. */
export function usesRedis (mode: string): boolean {
  return mode === 'redis' || mode === 'jwt-revocation'
}
