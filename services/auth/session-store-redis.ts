import type { AuthenticatorFactory, Verdict } from './authenticator.ts'
import { connectStore } from './redis-client.ts'
import { isWellFormedSessionId, newSessionId } from './session-id.ts'

/**
 * Sessions in Redis, shared by every server: one round trip per request. The connection
 * fails fast (./redis-client.ts): a command answers within REDIS_COMMAND_TIMEOUT_MS or the
 * request gets a 503, and the client reconnects by itself when Redis is back.
 *
 * A session is a key holding {"user","expiresAt"}. Its EX is the idle timeout, renewed by
 * each use in the same round trip (GETEX), so Redis itself drops a session left idle; the
 * absolute timeout (expiresAt, from SESSION_TTL_SECONDS) is checked on every read.
 */
export const createRedisAuthenticator: AuthenticatorFactory = async ({ config, log, metrics }) => {
  const { keyPrefix } = config.redis
  const idle = config.sessionIdleSeconds
  const store = await connectStore({ url: config.redis.url, commandTimeoutMs: config.redis.commandTimeoutMs, log, name: 'session-store' })
  const { redis } = store

  // Counted when sent, answered or not: the load each request puts on the store. The lookup
  // is counted as 'get': GETEX is a GET that also renews the idle expiry.
  async function run<T> (name: 'get' | 'set' | 'del', command: () => Promise<T>): Promise<T> {
    metrics.sessionStoreCommands.inc({ command: name })
    return await store.run(command)
  }

  return {
    mode: 'redis',
    async login (user) {
      const token = newSessionId()
      const value = JSON.stringify({ user, expiresAt: Date.now() + config.sessionTtlSeconds * 1000 })
      await run('set', async () => await redis.set(keyPrefix + token, value, 'EX', idle))
      return { token, expiresIn: config.sessionTtlSeconds }
    },
    async verify (token): Promise<Verdict> {
      if (!isWellFormedSessionId(token)) return { ok: false, reason: 'invalid_token' }
      // A session idle too long is already gone from Redis: it reads as unknown.
      const value = await run('get', async () => await redis.getex(keyPrefix + token, 'EX', idle))
      if (value === null) return { ok: false, reason: 'unknown_session' }
      const session = parseSession(value)
      if (session === undefined) {
        log.warn('a session key in Redis holds something this server did not write')
        return { ok: false, reason: 'unknown_session' }
      }
      if (session.expiresAt <= Date.now()) {
        await run('del', async () => await redis.del(keyPrefix + token))
        return { ok: false, reason: 'expired' }
      }
      return { ok: true, user: session.user }
    },
    async logout (token) {
      if (!isWellFormedSessionId(token)) return
      await run('del', async () => await redis.del(keyPrefix + token))
    },
    storeStatus: () => store.status(),
    async close () {
      store.close()
    }
  }
}

function parseSession (value: string): { user: string, expiresAt: number } | undefined {
  try {
    const parsed = JSON.parse(value) as { user?: unknown, expiresAt?: unknown }
    if (typeof parsed.user === 'string' && parsed.user !== '' && typeof parsed.expiresAt === 'number') return { user: parsed.user, expiresAt: parsed.expiresAt }
  } catch {}
  return undefined
}
