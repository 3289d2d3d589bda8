/**
 * The names AUTH_MODE accepts. A module of its own, imported by config.ts (to validate the
 * variable) and by authenticator.ts (to type an authenticator's mode): had either held it, each
 * would import the other.
 */
export const AUTH_MODES = ['memory', 'redis', 'postgres', 'jwt', 'cookie'] as const
export type AuthMode = typeof AUTH_MODES[number]
