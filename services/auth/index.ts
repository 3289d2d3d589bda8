import type { AuthenticatorFactory } from './authenticator.ts'
import type { AuthMode } from './modes.ts'
import { createSessionAuthenticator } from './sessions.ts'

/**
 * The one place a mode is chosen: AUTH_MODE names a key here. Each mode is imported only
 * when chosen, so a memory-mode server never loads ioredis or fast-jwt. A session mode is a
 * store (./stores/) under the one session authenticator (./sessions.ts).
 */
export const authenticators: Record<AuthMode, () => Promise<AuthenticatorFactory>> = {
  memory: async () => createSessionAuthenticator('memory', (await import('./stores/memory.ts')).createMemoryStore),
  redis: async () => createSessionAuthenticator('redis', (await import('./stores/redis.ts')).createRedisStore),
  // With SESSION_CACHE set, the same store behind a cache (./stores/cached.ts): a decorator, not a mode.
  postgres: async () => createSessionAuthenticator('postgres', (await import('./stores/cached.ts')).createPostgresStoreWithCache),
  // JWT_SIGNING picks the kind: hs256 signs and verifies with the shared secret; eddsa only
  // verifies, with the issuer's published keys.
  jwt: async () => async (context) => context.config.jwt.signing === 'eddsa'
    ? await (await import('./jwt-eddsa.ts')).createEddsaVerifier(context)
    : await (await import('./jwt.ts')).createJwtAuthenticator(context),
  cookie: async () => (await import('./cookie.ts')).createCookieAuthenticator
}
