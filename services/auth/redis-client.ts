import type { FastifyBaseLogger } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis, type RedisOptions } from 'ioredis'
import { withoutPassword } from '../../lib/safe-url.ts'
import type { RedisSettings } from '../redis-config.ts'
import { SessionStoreNotReplicatedError, SessionStoreUnavailableError } from './authenticator.ts'

export interface StoreClient {
  readonly redis: Redis
  /** Whether the connection is ready now. */
  status (): 'up' | 'down'
  /** Runs one command (or pipeline); any failure, a timeout included, becomes SessionStoreUnavailableError: a 503. */
  run<T> (command: () => Promise<T>): Promise<T>
  /**
   * Runs one write that must outlive a failover (a login's session, a revocation): with
   * REDIS_WAIT_REPLICAS=n, followed by WAIT n, and a SessionStoreNotReplicatedError (a named 503)
   * when fewer replicas acknowledged it in REDIS_WAIT_TIMEOUT_MS. Without, the same as run.
   * `write` must send its command on the connection it is given.
   */
  replicated<T> (write: (connection: Redis) => Promise<T>): Promise<T>
  close (): void
}

export type StoreOptions = Pick<RedisSettings, 'url' | 'commandTimeoutMs'> & Partial<Pick<RedisSettings, 'sentinels' | 'sentinelName' | 'waitReplicas' | 'waitTimeoutMs'>> & {
  log: FastifyBaseLogger
  /** Only labels the log lines (one process may hold a few of these clients). */
  name: string
}

/**
 * A Redis connection that fails fast. By default ioredis queues commands for as long as
 * Redis is away, which turns an outage into hung requests; here a command answers within
 * `commandTimeoutMs` or throws, and the client reconnects by itself when Redis is back.
 * With `sentinels`, it asks them for the primary on every (re)connection, so after a failover
 * it reconnects to the replica the Sentinels promoted (../../docs/failover.md).
 */
export async function connectStore (options: StoreOptions): Promise<StoreClient> {
  const { url, commandTimeoutMs, log, name, sentinels = [], sentinelName = 'mymaster', waitReplicas = 0, waitTimeoutMs = 0 } = options
  const bounds: RedisOptions = {
    // Never queue: a command sent while the connection is down (an outage, a failover under way)
    // fails at once, a 503, instead of waiting for a connection that may be seconds away.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1000),
    // Reconnect quickly: service resumes within about half a second of Redis returning.
    retryStrategy: (attempt) => Math.min(attempt * 50, 500),
    lazyConnect: true
  }
  const sentinelMode = sentinels.length > 0
  const redis = sentinelMode ? new Redis({ ...bounds, ...sentinelOptions(url, sentinels, sentinelName, commandTimeoutMs) }) : new Redis(url, bounds)
  const where = sentinelMode ? `sentinel://${sentinels.map((s) => `${s.host}:${s.port}`).join(',')}/${sentinelName}` : withoutPassword(url)

  let status: 'up' | 'down' = 'down'
  const watch = (connection: Redis, client: string, onStatus: (up: boolean) => void): void => {
    let up = false
    let lastError = ''
    let primary: string | undefined
    connection.on('ready', () => {
      up = true
      onStatus(true)
      lastError = ''
      const address = connection.stream === undefined ? undefined : `${connection.stream.remoteAddress ?? '?'}:${connection.stream.remotePort ?? '?'}`
      if (sentinelMode && primary !== undefined && address !== primary) {
        // The line an operator looks for after a failover: which primary the Sentinels promoted.
        log.warn({ redis: where, client, primary: address, previous: primary }, `redis failover: now connected to the new primary ${address ?? '?'} (was ${primary})`)
      } else {
        log.info({ redis: where, client, ...(sentinelMode ? { primary: address } : {}) }, 'redis connected')
      }
      primary = address
    })
    connection.on('error', (err: Error) => {
      // Logged once per distinct error, not once per reconnection attempt.
      if (err.message !== lastError) log.warn({ err: err.message, redis: where, client }, 'redis error')
      lastError = err.message
    })
    connection.on('close', () => {
      if (up) log.warn({ redis: where, client, ...(sentinelMode ? { primary } : {}) }, 'redis connection lost')
      up = false
      onStatus(false)
    })
  }
  watch(redis, name, (up) => { status = up ? 'up' : 'down' })
  // WAIT blocks the connection it is sent on until the replicas answer (up to its timeout), and
  // every command behind it waits too: on the connection the reads share, one slow WAIT would
  // stall every session lookup of this server. So the writes that WAIT get a connection of their
  // own (WAIT counts the writes of its own connection: the write goes there too).
  const writer = waitReplicas > 0 ? redis.duplicate() : redis
  if (writer !== redis) watch(writer, `${name} (replicated writes)`, () => {})
  // A server whose Redis is down still starts: it answers 503 until Redis is reachable. Through
  // Sentinels the first connection keeps asking them while none answers (sentinelRetryStrategy),
  // so the start waits for it no longer than one connect timeout.
  const connecting = [...new Set([redis, writer])].map(async (c) => { await c.connect().catch(() => {}) })
  await Promise.race([Promise.all(connecting), sleep(bounds.connectTimeout, undefined, { ref: false })])

  async function run<T> (command: () => Promise<T>): Promise<T> {
    try {
      return await command()
    } catch (err) {
      throw new SessionStoreUnavailableError(err)
    }
  }

  return {
    redis,
    status: () => status,
    run,
    async replicated (write) {
      if (waitReplicas === 0) return await run(async () => await write(redis))
      // Sent back to back on the one connection: WAIT counts the replicas that hold every write
      // this connection made before it, the one just sent included. One round trip, not two.
      const [result, acknowledged] = await run(async () => await Promise.all([write(writer), writer.wait(waitReplicas, waitTimeoutMs)]))
      if (acknowledged < waitReplicas) throw new SessionStoreNotReplicatedError(acknowledged, waitReplicas, waitTimeoutMs)
      return result
    },
    close () {
      redis.disconnect()
      if (writer !== redis) writer.disconnect()
    }
  }
}

/**
 * ioredis' Sentinel options, each chosen for a store that must fail fast rather than wait:
 * - REDIS_URL keeps its user, password and database number (the primary's), not its host.
 * - sentinelRetryStrategy: when no Sentinel answers, ioredis stays "connecting" and asks them
 *   all again after this delay (commands fail at once meanwhile: no offline queue). Returning
 *   null instead ends the client for good (ioredis sets it to "end" and never retries), so
 *   one moment without Sentinels would need a restart: it keeps trying, at the reconnect pace.
 * - sentinelCommandTimeout: one Sentinel that hangs costs one command timeout, then the next is asked.
 * - failoverDetector stays off (ioredis' default since redis/ioredis#1363): it drops the
 *   connection when the Sentinels announce +switch-master, but a client that is reconnecting at
 *   that moment, the usual case when the primary died, is ended for good (the connector's
 *   disconnect during a connect sets the client to "end"): measured here, two servers of three
 *   answered 503 until restarted. Sentinel ends the clients of a primary it demotes anyway.
 * - reconnectOnError READONLY: a connection still open to a primary that became a replica
 *   (demoted by other means than Sentinel's reconfiguration) gets READONLY for every write: the
 *   refused command is a 503, and the client reconnects through the Sentinels to the new primary.
 *   `true`, not 2: resending the command would need the offline queue.
 * - updateSentinels stays on (the default): Sentinels found through the first one are asked too.
 */
function sentinelOptions (url: string, sentinels: RedisSettings['sentinels'], name: string, commandTimeoutMs: number): RedisOptions {
  const parsed = new URL(url)
  const db = Number(parsed.pathname.slice(1))
  return {
    sentinels,
    name,
    role: 'master',
    ...(parsed.username !== '' ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password !== '' ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    sentinelRetryStrategy: (attempt: number) => Math.min(attempt * 50, 500),
    sentinelCommandTimeout: commandTimeoutMs,
    failoverDetector: false,
    reconnectOnError: (err: Error) => err.message.startsWith('READONLY')
  }
}
