import { Type } from 'typebox'

/**
 * The Redis variables the app server and the issuer share (services/config.ts and
 * services/issuer/config.ts take these definitions, so the two cannot drift), and how they
 * become one `RedisSettings`.
 */
export const RedisEnv = {
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379', description: 'must be a redis:// or rediss:// URL' }),
  REDIS_KEY_PREFIX: Type.String({ default: 'session:' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 10000, default: 500, description: 'must be a whole number of milliseconds from 10 to 10000' }),
  // Set: connect through these Sentinels to the primary they name (REDIS_URL's host and port are
  // then not used; its user, password and database number still are). Validated by redisSettings.
  REDIS_SENTINELS: Type.Optional(Type.String()),
  // Redis's own sentinel.conf example and the common Helm charts call the monitored primary
  // mymaster: the default, so pointing at one of those needs REDIS_SENTINELS alone.
  REDIS_SENTINEL_NAME: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$', default: 'mymaster', description: 'must be 1 to 64 letters, digits, dots, dashes or underscores: the name the Sentinels monitor the primary by' }),
  // WAIT after a login's session write and a jwt revocation: 0 (off) or how many replicas must hold it.
  REDIS_WAIT_REPLICAS: Type.Integer({ minimum: 0, maximum: 16, default: 0, description: 'must be a whole number from 0 (off) to 16' }),
  REDIS_WAIT_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 9999, default: 200, description: 'must be a whole number of milliseconds from 1 to 9999' })
}

export interface SentinelAddress { host: string, port: number }

export interface RedisSettings {
  url: string
  keyPrefix: string
  /** Every command answers within this or fails: a 503, never a queued or hung request. */
  commandTimeoutMs: number
  /** REDIS_SENTINELS: ask these for the primary (empty: connect to `url` itself). */
  sentinels: SentinelAddress[]
  /** REDIS_SENTINEL_NAME: the primary's name at the Sentinels. */
  sentinelName: string
  /** REDIS_WAIT_REPLICAS: 0, or how many replicas must acknowledge a login or revocation before it is answered. */
  waitReplicas: number
  /** REDIS_WAIT_TIMEOUT_MS: how long WAIT may wait for them; always less than commandTimeoutMs. */
  waitTimeoutMs: number
}

interface RedisEnvValues {
  REDIS_URL: string
  REDIS_KEY_PREFIX: string
  REDIS_COMMAND_TIMEOUT_MS: number
  REDIS_SENTINELS?: string | undefined
  REDIS_SENTINEL_NAME: string
  REDIS_WAIT_REPLICAS: number
  REDIS_WAIT_TIMEOUT_MS: number
}

const EXAMPLE = 'e.g. REDIS_SENTINELS=127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381'

/** The validated environment as settings; what is wrong is pushed to `problems`, each naming its variable. */
export function redisSettings (e: RedisEnvValues, problems: string[]): RedisSettings {
  const sentinels = e.REDIS_SENTINELS === undefined ? [] : parseSentinels(e.REDIS_SENTINELS, problems)
  // WAIT is one Redis command, bounded like every other by REDIS_COMMAND_TIMEOUT_MS: a WAIT
  // allowed to block as long would time out as "unavailable" before it could say "not replicated".
  if (e.REDIS_WAIT_REPLICAS > 0 && e.REDIS_WAIT_TIMEOUT_MS >= e.REDIS_COMMAND_TIMEOUT_MS) {
    problems.push(`REDIS_WAIT_TIMEOUT_MS (${e.REDIS_WAIT_TIMEOUT_MS}) must be less than REDIS_COMMAND_TIMEOUT_MS (${e.REDIS_COMMAND_TIMEOUT_MS}): WAIT is a command like any other and must answer within it; e.g. REDIS_WAIT_TIMEOUT_MS=${Math.max(1, Math.floor(e.REDIS_COMMAND_TIMEOUT_MS / 2))}`)
  }
  return {
    url: e.REDIS_URL,
    keyPrefix: e.REDIS_KEY_PREFIX,
    commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    sentinels,
    sentinelName: e.REDIS_SENTINEL_NAME,
    waitReplicas: e.REDIS_WAIT_REPLICAS,
    waitTimeoutMs: e.REDIS_WAIT_TIMEOUT_MS
  }
}

/** REDIS_SENTINELS: host:port,host:port ([::1]:26379 for an IPv6 address). */
export function parseSentinels (value: string, problems: string[]): SentinelAddress[] {
  const entries = value.split(',').map((s) => s.trim())
  const sentinels: SentinelAddress[] = []
  entries.forEach((entry, index) => {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(entry)
    const port = Number(match?.[2])
    if (match === null || port < 1 || port > 65535) {
      problems.push(`REDIS_SENTINELS entry ${index + 1} of ${entries.length} must be host:port with a port from 1 to 65535 (got ${JSON.stringify(entry)}); ${EXAMPLE}`)
      return
    }
    const host = (match[1] as string).replace(/^\[(.*)\]$/, '$1')
    if (sentinels.some((s) => s.host === host && s.port === port)) {
      problems.push(`REDIS_SENTINELS lists ${entry} twice: name each Sentinel once`)
      return
    }
    sentinels.push({ host, port })
  })
  return sentinels
}
