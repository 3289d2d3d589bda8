import { startRedisProcess } from '../../scripts/lib/redis-process.ts'

export { freePort } from '../../scripts/lib/ports.ts'

/** A redis-server of a test's own: no state shared with other tests or with the machine's Redis. */
export interface PrivateRedis {
  /** redis://127.0.0.1:<port> */
  readonly url: string
  readonly port: number
  /** Ends the process (SIGTERM by default, SIGKILL for a crash) and resolves once it has exited. Idempotent. */
  stop (signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port, empty (nothing is saved), and resolves once it answers PING. Idempotent. */
  start (): Promise<void>
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers, like a hung server. */
  pause (): void
  /** Thaws a paused process (SIGCONT). */
  resume (): void
  /** Whether the process is running now. */
  running (): boolean
}

/**
 * The launcher's private redis-server (scripts/lib/redis-process.ts), with the few extra
 * moves tests make. Call `stop()` in t.teardown; the process also dies with the test's.
 */
export async function startRedis (): Promise<PrivateRedis> {
  const redis = await startRedisProcess()
  return {
    url: redis.url,
    port: redis.port,
    stop: async (signal = 'SIGTERM') => await redis.stop(signal, signal === 'SIGKILL' ? 0 : 5000),
    start: async () => await redis.start(),
    pause: () => redis.signal('SIGSTOP'),
    resume: () => redis.signal('SIGCONT'),
    running: () => redis.running
  }
}
