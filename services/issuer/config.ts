import { Type } from 'typebox'
import { ConfigError, readEnv } from '../../lib/config.ts'
import { JWT_AUDIENCE, JWT_ISSUER, ServerEnvSchema, parseTrustProxy, type AppConfig } from '../config.ts'
import { redisSettings } from '../redis-config.ts'

const shared = ServerEnvSchema.properties
const seconds = (max: number, what: string, fallback: number) =>
  Type.Integer({ minimum: 1, maximum: max, default: fallback, description: `must be a whole number of seconds from 1 to ${max}${what}` })

/**
 * Every variable the issuer reads, with its default. What it shares with the app server (Redis,
 * the login throttle, the clock tolerance, the proxies it trusts) is the app server's own
 * definition, so the two cannot drift.
 */
export const IssuerEnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3100, description: 'must be a port number from 0 to 65535' }),
  HOST: shared.HOST,
  SERVER_ID: shared.SERVER_ID,
  // The private keys: one file each (services/issuer/keys.ts), in a directory no app server can read.
  ISSUER_KEYS_DIR: Type.String({ minLength: 1, description: 'must be the directory holding the issuer\'s private keys (node scripts/make-issuer-key.ts DIR makes one)' }),
  ACCESS_TTL_SECONDS: seconds(3600, ' (an hour: access tokens are meant to be short)', 300),
  REFRESH_TTL_SECONDS: seconds(2592000, ' (30 days)', 86400),
  REFRESH_IDLE_SECONDS: seconds(2592000, ' (30 days)', 3600),
  JWT_CLOCK_TOLERANCE_SECONDS: shared.JWT_CLOCK_TOLERANCE_SECONDS,
  REDIS_URL: shared.REDIS_URL,
  REDIS_KEY_PREFIX: shared.REDIS_KEY_PREFIX,
  REDIS_COMMAND_TIMEOUT_MS: shared.REDIS_COMMAND_TIMEOUT_MS,
  REDIS_SENTINELS: shared.REDIS_SENTINELS,
  REDIS_SENTINEL_NAME: shared.REDIS_SENTINEL_NAME,
  REDIS_WAIT_REPLICAS: shared.REDIS_WAIT_REPLICAS,
  REDIS_WAIT_TIMEOUT_MS: shared.REDIS_WAIT_TIMEOUT_MS,
  LOGIN_THROTTLE_WINDOW_SECONDS: shared.LOGIN_THROTTLE_WINDOW_SECONDS,
  LOGIN_MAX_FAILURES_PER_ACCOUNT: shared.LOGIN_MAX_FAILURES_PER_ACCOUNT,
  LOGIN_MAX_FAILURES_PER_ADDRESS: shared.LOGIN_MAX_FAILURES_PER_ADDRESS,
  // No default here: redis unless set (loadIssuerConfig), the issuer keeping refresh tokens there
  // already, so every issuer shares the counts. Empty counts as unset, as Compose passes it.
  LOGIN_THROTTLE_STORE: shared.LOGIN_THROTTLE_STORE,
  TRUST_PROXY: shared.TRUST_PROXY,
  LOG_LEVEL: shared.LOG_LEVEL
})

export interface IssuerConfig {
  serverId: string
  port: number
  host: string
  logLevel: string
  keysDir: string
  /** Access tokens live this long (the `exp` it signs). */
  accessTtlSeconds: number
  /** A refresh token family ends this long after login, whatever happens. */
  refreshTtlSeconds: number
  /** A refresh token family unused this long ends. Never more than refreshTtlSeconds. */
  refreshIdleSeconds: number
  clockToleranceSeconds: number
  /** The `iss` and `aud` it signs: the ones every app server insists on. */
  issuer: string
  audience: string
  redis: AppConfig['redis']
  loginThrottle: AppConfig['loginThrottle']
  trustProxy: string[]
}

export function loadIssuerConfig (env: Record<string, string | undefined>): IssuerConfig {
  const e = readEnv(IssuerEnvSchema, env)
  const problems: string[] = []
  const trustProxy = parseTrustProxy(e.TRUST_PROXY, problems)
  const redis = redisSettings(e, problems)
  if (problems.length > 0) throw new ConfigError(problems)
  return {
    serverId: e.SERVER_ID,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    keysDir: e.ISSUER_KEYS_DIR,
    accessTtlSeconds: e.ACCESS_TTL_SECONDS,
    refreshTtlSeconds: e.REFRESH_TTL_SECONDS,
    refreshIdleSeconds: Math.min(e.REFRESH_IDLE_SECONDS, e.REFRESH_TTL_SECONDS),
    clockToleranceSeconds: e.JWT_CLOCK_TOLERANCE_SECONDS,
    issuer: JWT_ISSUER,
    audience: JWT_AUDIENCE,
    redis,
    loginThrottle: {
      windowSeconds: e.LOGIN_THROTTLE_WINDOW_SECONDS,
      maxFailuresPerAccount: e.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      maxFailuresPerAddress: e.LOGIN_MAX_FAILURES_PER_ADDRESS,
      store: e.LOGIN_THROTTLE_STORE ?? 'redis'
    },
    trustProxy
  }
}
