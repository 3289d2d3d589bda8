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
  stop (): Promise<void>
}

/**
 * A redis-server of this run's own on a free port (nothing saved to disk), and, when delayMs > 0,
 * the delay proxy in front of it as a separate process. Stops what it started if any step fails.
 */
export async function startPrivateRedis (options: { delayMs?: number, onLog?: LogSink } = {}): Promise<PrivateRedis> {
  const { delayMs = 0, onLog = () => {} } = options
  const started: ManagedProcess[] = []
  const stop = async (): Promise<void> => {
    for (const p of started.splice(0).reverse()) await p.stop()
  }
  try {
    const redis = await startRedisProcess(onLog)
    started.push(redis)
    const { port, url: directUrl } = redis
    if (delayMs <= 0) return { url: directUrl, directUrl, delayMs: 0, stop }

    const proxyPort = await freePort()
    const proxy = new ManagedProcess({
      name: 'redis-delay',
      command: process.execPath,
      args: [DELAY_PROXY_ENTRY, String(proxyPort), `127.0.0.1:${port}`, String(delayMs)],
      env: { PATH: process.env.PATH ?? '' },
      // A PING that comes back through the proxy: the whole path works.
      isReady: async () => await redisPong(proxyPort, '127.0.0.1', 1000 + delayMs)
    }, onLog)
    started.push(proxy)
    await proxy.start()
    return { url: `redis://127.0.0.1:${proxyPort}`, directUrl, delayMs, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
