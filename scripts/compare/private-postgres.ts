import { startPostgresProcess, postgresAnswers } from '../lib/postgres-process.ts'
import type { LogSink } from '../lib/managed-process.ts'
import { startDelayProxy } from './private-redis.ts'

export interface PrivatePostgres {
  /** What the app servers are given: the delay proxy's URL when there is a delay, else PostgreSQL itself. */
  readonly url: string
  /** PostgreSQL itself, for looking inside it without the delay. */
  readonly directUrl: string
  readonly delayMs: number
  /** The postmaster's process id (its backends are its children), to read the database's CPU. */
  readonly pid: number | undefined
  stop (): Promise<void>
}

/**
 * A PostgreSQL of this run's own (scripts/lib/postgres-process.ts: a temporary data directory,
 * removed on stop) and, when delayMs > 0, the delay proxy in front of it, as for Redis: every
 * statement and its answer wait delayMs / 2 each way, as a database one network hop away would.
 */
export async function startPrivatePostgres (options: { delayMs?: number, onLog?: LogSink } = {}): Promise<PrivatePostgres> {
  const { delayMs = 0, onLog = () => {} } = options
  const postgres = await startPostgresProcess(onLog)
  if (delayMs <= 0) return { url: postgres.url, directUrl: postgres.url, delayMs: 0, get pid () { return postgres.pid }, stop: async () => { await postgres.remove() } }
  try {
    const proxy = await startDelayProxy({
      name: 'postgres-delay',
      targetPort: postgres.port,
      delayMs,
      onLog,
      // A query answered through the proxy: the whole path works.
      isReady: async (port) => await postgresAnswers(`postgres://postgres@127.0.0.1:${port}/postgres`, 1000 + 4 * delayMs)
    })
    return {
      url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`,
      directUrl: postgres.url,
      delayMs,
      get pid () { return postgres.pid },
      async stop () {
        await proxy.stop()
        await postgres.remove()
      }
    }
  } catch (err) {
    await postgres.remove()
    throw err
  }
}
