import { ManagedProcess, type LogSink, type ProcessSpec } from './managed-process.ts'
import { freePort } from './ports.ts'
import { redisPong } from './probes.ts'

export type RedisProcess = ManagedProcess & { readonly url: string, readonly port: number }

export const REDIS_MISSING = 'redis mode needs Redis: install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), or set REDIS_URL to a running Redis'

/**
 * A private redis-server on a free port of 127.0.0.1 that keeps nothing on disk, started and
 * answering PING when this resolves.
 */
export async function startRedisProcess (onLog: LogSink = () => {}, options: Pick<ProcessSpec, 'ownProcessGroup'> = {}): Promise<RedisProcess> {
  const proc = await startRedisServer('redis', (port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], onLog, options)
  return Object.assign(proc, { url: `redis://127.0.0.1:${proc.port}` })
}

/**
 * One redis-server (or Sentinel: `--sentinel` in args) named `name`, on a free port, answering
 * PING when this resolves. Another process can take the free port between the check and redis
 * binding it, so it tries a few, each on a fresh port; a missing binary is said at once.
 */
export async function startRedisServer (name: string, args: (port: number) => string[], onLog: LogSink = () => {}, options: Pick<ProcessSpec, 'ownProcessGroup'> = {}): Promise<ManagedProcess & { readonly port: number }> {
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const proc = new ManagedProcess({
      name,
      command: 'redis-server',
      args: args(port),
      env: { ...process.env } as Record<string, string>,
      isReady: async () => await redisPong(port),
      readyTimeoutMs: 10_000,
      whenMissing: REDIS_MISSING,
      ...options
    }, onLog)
    try {
      await proc.start()
      return Object.assign(proc, { port })
    } catch (err) {
      if ((err as Error).message === REDIS_MISSING) throw err
      lastError = err
    }
  }
  throw lastError
}
