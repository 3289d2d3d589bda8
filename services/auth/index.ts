import type { AuthMode, AuthenticatorFactory } from './authenticator.ts'
import { createJwtAuthenticator } from './jwt.ts'
import { createMemoryAuthenticator } from './session-store-memory.ts'
import { createRedisAuthenticator } from './session-store-redis.ts'

/** The one place a mode is chosen: AUTH_MODE names a key here. */
export const authenticators: Record<AuthMode, AuthenticatorFactory> = {
  memory: createMemoryAuthenticator,
  redis: createRedisAuthenticator,
  jwt: createJwtAuthenticator
}
