import { startCluster, type Cluster } from '../cluster.ts'
import { measureStoreOutage, type StoreOutageFigures } from './store-outage.ts'
import type { FaultResult } from './support.ts'

export interface PostgresOutageOptions {
  /**
   * kill: SIGKILL to the server and every backend, as a crash of the machine it runs on would
   * end them, then the server again on the same port and data directory: every committed
   * session survives (fsync is off, but a process crash loses nothing the OS was given).
   * freeze: SIGSTOP to the server and every backend: connections stay open, nothing answers.
   */
  how: 'kill' | 'freeze'
  outageMs?: number
  sessions?: number
  connections?: number
}

/** Stop the cluster's private PostgreSQL under load (./store-outage.ts measures it). */
export async function postgresOutage (options: PostgresOutageOptions): Promise<FaultResult<StoreOutageFigures>> {
  const { how, outageMs = 2000, sessions = 12, connections = 8 } = options
  let cluster: Cluster | undefined
  try {
    cluster = await startCluster({ mode: 'postgres', servers: 3, logLevel: 'warn' })
    const postgres = cluster.postgres
    if (postgres === undefined) throw new Error('the cluster started no PostgreSQL of its own')
    return await measureStoreOutage(cluster, {
      name: 'PostgreSQL',
      kill: async () => { await postgres.kill() },
      restart: async () => { await postgres.start() },
      freeze: () => { postgres.signal('SIGSTOP') },
      thaw: () => { postgres.signal('SIGCONT') }
    }, {
      how,
      outageMs,
      sessions,
      connections,
      mode: 'postgres',
      fault: how === 'kill' ? `PostgreSQL killed (SIGKILL, every backend) for ${outageMs / 1000} s, restarted on its data directory` : `PostgreSQL frozen (SIGSTOP, every backend) for ${outageMs / 1000} s, then SIGCONT`
    })
  } finally {
    await cluster?.stop()
  }
}
