import { connectStore } from '../redis-client.ts'
import type { Session, SessionStoreFactory } from '../sessions.ts'

/**
 * Sessions in Redis, shared by every server: one round trip per request. The connection fails
 * fast (../redis-client.ts): a command answers within REDIS_COMMAND_TIMEOUT_MS or the request
 * gets a 503, and the client reconnects by itself when Redis is back.
 *
 * A session is a key holding {"user","expiresAt"}. Its EX is the idle timeout, renewed by each
 * use in the same round trip (GETEX), so Redis itself drops a session left idle: such a session
 * is not found, and reads as unknown_session.
 */
export const createRedisStore: SessionStoreFactory = async ({ config, log, metrics }) => {
  const { keyPrefix } = config.redis
  const idle = config.sessionIdleSeconds
  const client = await connectStore({ ...config.redis, log, name: 'session-store' })
  const { redis } = client

  // Counted when sent, answered or not: the load each request puts on the store. The label is
  // the command Redis runs.
  async function run<T> (command: 'getex' | 'set' | 'del', send: () => Promise<T>): Promise<T> {
    metrics.sessionStoreCommands.inc({ command })
    return await client.run(send)
  }

  return {
    async create (id, { user, expiresAt }) {
      metrics.sessionStoreCommands.inc({ command: 'set' })
      // With REDIS_WAIT_REPLICAS, a login is answered only once its session is on the replicas
      // (else a named 503): a failover right after it cannot lose the session then.
      await client.replicated(async (connection) => await connection.set(keyPrefix + id, JSON.stringify({ user, expiresAt }), 'EX', idle))
    },
    async touch (id) {
      const value = await run('getex', async () => await redis.getex(keyPrefix + id, 'EX', idle))
      if (value === null) return undefined
      const session = parseSession(value)
      if (session === undefined) log.warn('a session key in Redis holds something this server did not write')
      return session
    },
    async delete (id) {
      await run('del', async () => await redis.del(keyPrefix + id))
    },
    status: () => client.status(),
    async close () {
      client.close()
    }
  }
}

function parseSession (value: string): Session | undefined {
  try {
    const parsed = JSON.parse(value) as { user?: unknown, expiresAt?: unknown }
    if (typeof parsed.user === 'string' && parsed.user !== '' && typeof parsed.expiresAt === 'number') return { user: parsed.user, expiresAt: parsed.expiresAt }
  } catch {}
  return undefined
}
