import { startCluster, type Cluster } from '../cluster.ts'
import { measureStoreOutage, type StoreOutageFigures } from './store-outage.ts'
import { startPersistentRedis, type FaultResult } from './support.ts'

export interface RedisOutageOptions {
  /** redis: sessions in Redis; jwt: JWT_REVOCATION=redis, so every request asks Redis too. */
  mode: 'redis' | 'jwt'
  /**
   * kill: SIGKILL, then a new redis-server on the same port that reloads its append-only
   * file (every acknowledged write was fsynced), so the sessions survive.
   * freeze: SIGSTOP, then SIGCONT: Redis hangs with its connections open, then carries on.
   */
  how: 'kill' | 'freeze'
  outageMs?: number
  sessions?: number
  connections?: number
}

/** What redisOutage measured. */
export type RedisOutageFigures = StoreOutageFigures

/** Stop Redis under load (./store-outage.ts measures it). */
export async function redisOutage (options: RedisOutageOptions): Promise<FaultResult<RedisOutageFigures>> {
  const { mode, how, outageMs = 2000, sessions = 12, connections = 8 } = options
  const redis = await startPersistentRedis()
  let cluster: Cluster | undefined
  try {
    cluster = await startCluster({ mode, servers: 3, logLevel: 'warn', redisUrl: redis.url, jwtRevocation: mode === 'jwt' })
    return await measureStoreOutage(cluster, {
      name: 'Redis',
      kill: async () => { await redis.kill() },
      restart: async () => { await redis.start() },
      freeze: () => { redis.signal('SIGSTOP') },
      thaw: () => { redis.signal('SIGCONT') }
    }, {
      how,
      outageMs,
      sessions,
      connections,
      mode: mode === 'jwt' ? 'jwt+revocation' : mode,
      fault: how === 'kill' ? `Redis killed (SIGKILL) for ${outageMs / 1000} s, restarted from its AOF` : `Redis frozen (SIGSTOP) for ${outageMs / 1000} s, then SIGCONT`
    })
  } finally {
    await cluster?.stop()
    await redis.remove()
  }
}
