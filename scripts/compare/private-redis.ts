import { fileURLToPath } from 'node:url'
import { ManagedProcess, type LogSink } from '../lib/managed-process.ts'
import { freePort } from '../lib/ports.ts'
import { redisPong } from '../lib/probes.ts'
import { startRedisProcess } from '../lib/redis-process.ts'

const DELAY_PROXY_ENTRY = fileURLToPath(new URL('./delay-proxy-server.ts', import.meta.url))

export interface PrivateRedis {
  /** What the app servers are given: the delay proxy's URL when there is a delay, else Redis itself. */
  readonly url: string
  /** Redis itself, for looking inside it without the delay. */
  readonly directUrl: string
  readonly delayMs: number
  /** The redis-server's process id, to read its CPU (capacity.ts: the store's CPU per request). */
  readonly pid: number | undefined
  stop (): Promise<void>
}

/**
 * The TCP delay proxy (delay-proxy.ts) as a process of its own, in front of 127.0.0.1:targetPort,
 * on a free port; ready once `isReady(port)` gets an answer through it.
 */
export async function startDelayProxy (options: { name: string, targetPort: number, delayMs: number, onLog: LogSink, isReady: (port: number) => Promise<boolean> }): Promise<{ port: number, stop: () => Promise<void> }> {
  const port = await freePort()
  const proxy = new ManagedProcess({
    name: options.name,
    command: process.execPath,
    args: [DELAY_PROXY_ENTRY, String(port), `127.0.0.1:${options.targetPort}`, String(options.delayMs)],
    env: { PATH: process.env.PATH ?? '' },
    isReady: async () => await options.isReady(port)
  }, options.onLog)
  try {
    await proxy.start()
  } catch (err) {
    await proxy.stop()
    throw err
  }
  return { port, stop: async () => { await proxy.stop() } }
}

/**
 * A redis-server of this run's own on a free port (nothing saved to disk), and, when delayMs > 0,
 * the delay proxy in front of it as a separate process. Stops what it started if any step fails.
 */
export async function startPrivateRedis (options: { delayMs?: number, onLog?: LogSink } = {}): Promise<PrivateRedis> {
  const { delayMs = 0, onLog = () => {} } = options
  const redis = await startRedisProcess(onLog)
  const { port, url: directUrl } = redis
  if (delayMs <= 0) return { url: directUrl, directUrl, delayMs: 0, pid: redis.pid, stop: async () => { await redis.stop() } }
  try {
    // A PING that comes back through the proxy: the whole path works.
    const proxy = await startDelayProxy({ name: 'redis-delay', targetPort: port, delayMs, onLog, isReady: async (p) => await redisPong(p, '127.0.0.1', 1000 + delayMs) })
    return {
      url: `redis://127.0.0.1:${proxy.port}`,
      directUrl,
      delayMs,
      pid: redis.pid,
      async stop () {
        await proxy.stop()
        await redis.stop()
      }
    }
  } catch (err) {
    await redis.stop()
    throw err
  }
}
