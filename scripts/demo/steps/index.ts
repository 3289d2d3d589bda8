import type { Step } from '../step.ts'

/**
 * The walkthrough, in order: a step's number is its place in this list, from 1. Adding a step
 * is a file in this folder and a line here (README.md says how).
 */
export const STEPS: ReadonlyArray<Step<unknown>> = [
  (await import('./01-memory-round-robin.ts')).memoryRoundRobin,
  (await import('./02-memory-logout-restart.ts')).memoryLogoutRestart,
  (await import('./03-sticky-sessions.ts')).stickySessions,
  (await import('./04-redis-sessions.ts')).redisSessions,
  (await import('./05-postgres-beside-redis.ts')).postgresBesideRedis,
  (await import('./06-jwt-stateless.ts')).jwtStateless,
  (await import('./07-jwt-forgeries.ts')).jwtForgeries,
  (await import('./08-encrypted-cookie.ts')).encryptedCookie,
  (await import('./09-jwt-key-rotation.ts')).jwtKeyRotation,
  (await import('./10-jwt-logout.ts')).jwtLogout,
  (await import('./11-jwt-revocation.ts')).jwtRevocation,
  (await import('./12-login-throttle.ts')).loginThrottle,
  (await import('./13-postgres-local-cache.ts')).postgresLocalCache,
  (await import('./14-check-can-forge.ts')).checkCanForge,
  (await import('./15-refresh-tokens.ts')).refreshTokens,
  (await import('./16-jwks-rotation.ts')).jwksRotation
]
