import type { AuthenticatorFactory } from './authenticator.ts'
import type { AuthMode } from './modes.ts'

/**
 * The one place a mode is chosen: AUTH_MODE names a key here. Each mode is imported only
 * when chosen, so a memory-mode server never loads ioredis or fast-jwt.
 */
export const authenticators: Record<AuthMode, () => Promise<AuthenticatorFactory>> = {
  memory: async () => (await import('./session-store-memory.ts')).createMemoryAuthenticator,
  redis: async () => (await import('./session-store-redis.ts')).createRedisAuthenticator,
  jwt: async () => (await import('./jwt.ts')).createJwtAuthenticator
}
