import { Redis } from 'ioredis'
import type { AuthenticatorFactory, Verdict } from './authenticator.ts'
import { SessionStoreUnavailableError } from './authenticator.ts'
import { isWellFormedSessionId, newSessionId } from './session-id.ts'

/**
 * Sessions in Redis, shared by every server: one round trip per request.
 * ioredis is set to fail fast: by default it queues commands forever while Redis
 * is down, which would turn an outage into hung requests. Here a command either
 * answers within `commandTimeoutMs` or the request gets a 503, and the client
 * reconnects by itself when Redis is back.
 */
export const createRedisAuthenticator: AuthenticatorFactory = async ({ config, log, metrics }) => {
  const { url, keyPrefix, commandTimeoutMs } = config.redis
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1000),
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    lazyConnect: true
  })

  let status: 'up' | 'down' = 'down'
  let lastError = ''
  redis.on('ready', () => {
    status = 'up'
    lastError = ''
    log.info({ redis: safeUrl(url) }, 'session store connected')
  })
  redis.on('error', (err: Error) => {
    // Logged once per distinct error, not once per reconnection attempt.
    if (err.message !== lastError) log.warn({ err: err.message, redis: safeUrl(url) }, 'session store error')
    lastError = err.message
  })
  redis.on('close', () => {
    if (status === 'up') log.warn({ redis: safeUrl(url) }, 'session store connection lost')
    status = 'down'
  })
  // A server whose Redis is down still starts: it answers 503 until Redis is reachable.
  await redis.connect().catch(() => {})

  // Counted when sent, answered or not: the load each request puts on the store.
  async function run<T> (name: 'get' | 'set' | 'del', command: () => Promise<T>): Promise<T> {
    metrics.sessionStoreCommands.inc({ command: name })
    try {
      return await command()
    } catch (err) {
      throw new SessionStoreUnavailableError(err)
    }
  }

  return {
    mode: 'redis',
    async login (user) {
      const token = newSessionId()
      await run('set', () => redis.set(keyPrefix + token, user, 'EX', config.sessionTtlSeconds))
      return { token, expiresIn: config.sessionTtlSeconds }
    },
    async verify (token): Promise<Verdict> {
      if (!isWellFormedSessionId(token)) return { ok: false, reason: 'invalid_token' }
      // Redis drops the key when its EX runs out, so an expired session reads as unknown.
      const user = await run('get', () => redis.get(keyPrefix + token))
      return user === null ? { ok: false, reason: 'unknown_session' } : { ok: true, user }
    },
    async logout (token) {
      if (!isWellFormedSessionId(token)) return
      await run('del', () => redis.del(keyPrefix + token))
    },
    storeStatus: () => status,
    async close () {
      redis.disconnect()
    }
  }
}

function safeUrl (url: string): string {
  const u = new URL(url)
  if (u.password !== '') u.password = '***'
  return u.toString()
}
