import type { FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'
import { withoutPassword } from '../../lib/safe-url.ts'
import { SessionStoreUnavailableError } from './authenticator.ts'

export interface StoreClient {
  readonly redis: Redis
  /** Whether the connection is ready now. */
  status (): 'up' | 'down'
  /** Runs one command (or pipeline); any failure, a timeout included, becomes SessionStoreUnavailableError: a 503. */
  run<T> (command: () => Promise<T>): Promise<T>
  close (): void
}

/**
 * A Redis connection that fails fast. By default ioredis queues commands for as long as
 * Redis is away, which turns an outage into hung requests; here a command answers within
 * `commandTimeoutMs` or throws, and the client reconnects by itself when Redis is back.
 * `name` only labels the log lines (one process may hold a few of these).
 */
export async function connectStore (options: { url: string, commandTimeoutMs: number, log: FastifyBaseLogger, name: string }): Promise<StoreClient> {
  const { url, commandTimeoutMs, log, name } = options
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1000),
    // Reconnect quickly: service resumes within about half a second of Redis returning.
    retryStrategy: (attempt) => Math.min(attempt * 50, 500),
    lazyConnect: true
  })

  let status: 'up' | 'down' = 'down'
  let lastError = ''
  redis.on('ready', () => {
    status = 'up'
    lastError = ''
    log.info({ redis: withoutPassword(url), client: name }, 'redis connected')
  })
  redis.on('error', (err: Error) => {
    // Logged once per distinct error, not once per reconnection attempt.
    if (err.message !== lastError) log.warn({ err: err.message, redis: withoutPassword(url), client: name }, 'redis error')
    lastError = err.message
  })
  redis.on('close', () => {
    if (status === 'up') log.warn({ redis: withoutPassword(url), client: name }, 'redis connection lost')
    status = 'down'
  })
  // A server whose Redis is down still starts: it answers 503 until Redis is reachable.
  await redis.connect().catch(() => {})

  return {
    redis,
    status: () => status,
    async run (command) {
      try {
        return await command()
      } catch (err) {
        throw new SessionStoreUnavailableError(err)
      }
    },
    close () {
      redis.disconnect()
    }
  }
}
