import { hostname } from 'node:os'
import { Type } from 'typebox'
import { ConfigError, readEnv } from '../lib/config.ts'
import { AUTH_MODES, type AuthMode } from './auth/authenticator.ts'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const EnvSchema = Type.Object({
  AUTH_MODE: Type.Union(AUTH_MODES.map((m) => Type.Literal(m)), { default: 'jwt' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'must be a port number from 0 to 65535' }),
  HOST: Type.String({ default: '127.0.0.1' }),
  SERVER_ID: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$', default: hostname(), description: 'must be 1 to 64 letters, digits, dots, dashes or underscores' }),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379', description: 'must be a redis:// or rediss:// URL' }),
  REDIS_KEY_PREFIX: Type.String({ default: 'session:' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 10000, default: 500, description: 'must be a whole number of milliseconds from 10 to 10000' }),
  JWT_SECRET: Type.Optional(Type.String()),
  SESSION_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 2592000, default: 3600, description: 'must be a whole number of seconds from 1 to 2592000 (30 days)' }),
  MAX_MEMORY_SESSIONS: Type.Integer({ minimum: 1, default: 1_000_000, description: 'must be a positive whole number' }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' })
})

export interface AppConfig {
  mode: AuthMode
  serverId: string
  sessionTtlSeconds: number
  memory: { maxSessions: number }
  redis: { url: string, keyPrefix: string, commandTimeoutMs: number }
  jwt: { secret: string, issuer: string, audience: string }
}

export interface ServerConfig extends AppConfig {
  port: number
  host: string
  logLevel: string
}

/** The JWT claims every server signs and insists on; not secret, so not configurable per server. */
export const JWT_ISSUER = 'auth-cluster'
export const JWT_AUDIENCE = 'auth-cluster-api'
export const MIN_JWT_SECRET_BYTES = 32

export function loadServerConfig (env: Record<string, string | undefined>): ServerConfig {
  const e = readEnv(EnvSchema, env)
  const secret = e.JWT_SECRET ?? ''
  if (e.AUTH_MODE === 'jwt' && Buffer.byteLength(secret) < MIN_JWT_SECRET_BYTES) {
    throw new ConfigError([secret === ''
      ? `JWT_SECRET is required in jwt mode: set it to the same random value (at least ${MIN_JWT_SECRET_BYTES} bytes) on every server, e.g. JWT_SECRET=$(openssl rand -base64 48)`
      : `JWT_SECRET must be at least ${MIN_JWT_SECRET_BYTES} bytes (got ${Buffer.byteLength(secret)})`])
  }
  return {
    mode: e.AUTH_MODE,
    port: e.PORT,
    host: e.HOST,
    serverId: e.SERVER_ID,
    logLevel: e.LOG_LEVEL,
    sessionTtlSeconds: e.SESSION_TTL_SECONDS,
    memory: { maxSessions: e.MAX_MEMORY_SESSIONS },
    redis: { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX, commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS },
    jwt: { secret, issuer: JWT_ISSUER, audience: JWT_AUDIENCE }
  }
}
