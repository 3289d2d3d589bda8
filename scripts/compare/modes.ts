import type { AuthMode } from '../../services/auth/authenticator.ts'

/**
 * What compare can measure: the auth modes, and jwt with a revocation list
 * (`jwt-revocation`: AUTH_MODE=jwt with JWT_REVOCATION=redis), whose row shows what a
 * revocable JWT costs on every request.
 */
export const COMPARE_MODES = ['memory', 'redis', 'postgres', 'jwt', 'jwt-revocation'] as const
export type CompareMode = typeof COMPARE_MODES[number]

/** What it measures unless --modes says otherwise: postgres only when asked, until the report has its columns. */
export const DEFAULT_COMPARE_MODES: readonly CompareMode[] = ['memory', 'redis', 'jwt', 'jwt-revocation']

/** The AUTH_MODE a compare mode runs its servers in. */
export function authModeOf (mode: CompareMode): AuthMode {
  return mode === 'jwt-revocation' ? 'jwt' : mode
}

/** Whether the mode's servers ask Redis on every request. */
export function usesRedis (mode: string): boolean {
  return mode === 'redis' || mode === 'jwt-revocation'
}
