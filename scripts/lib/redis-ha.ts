import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { LogSink, ManagedProcess, ProcessSpec } from './managed-process.ts'
import { startRedisServer } from './redis-process.ts'

/** The name the Sentinels monitor the primary by: REDIS_SENTINEL_NAME's default too. */
export const SENTINEL_NAME = 'mymaster'
/** How many Sentinels must agree the primary is down before one of them fails it over. */
export const SENTINEL_QUORUM = 2
/** How long the primary must not answer before a Sentinel thinks it down (down-after-milliseconds). */
export const SENTINEL_DOWN_AFTER_MS = 1000
/**
 * failover-timeout: within it a failover must finish (a replica promoted, the others told), and
 * a Sentinel retries one only after twice this. Three times down-after: an election and a
 * promotion on one machine take well under a second.
 */
export const SENTINEL_FAILOVER_TIMEOUT_MS = 3000
/**
 * The longest the Sentinels should take, from the primary's death, to promote the replica: it
 * must be thought down (down-after) and the failover done (failover-timeout). "Requests succeed
 * again within the failover time plus 1 s" means within this plus 1000 ms.
 */
export const FAILOVER_WITHIN_MS = SENTINEL_DOWN_AFTER_MS + SENTINEL_FAILOVER_TIMEOUT_MS

export type HaNode = ManagedProcess & { readonly port: number }

export interface RedisHa {
  /** Started as the primary (redis-primary); after a failover, a replica or dead. */
  readonly primary: HaNode
  /** Started as the replica of `primary` (redis-replica). */
  readonly replica: HaNode
  /** sentinel-1 ... sentinel-3. */
  readonly sentinels: HaNode[]
  /** REDIS_SENTINELS for the app servers: 127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3. */
  readonly sentinelList: string
  readonly name: string
  /** Every process by its name (redis-primary, redis-replica, sentinel-N): for a fault to kill one by name. */
  readonly byName: Map<string, HaNode>
  /** The port the Sentinels name as primary now (the first that answers), or undefined when none does. */
  primaryPort (): Promise<number | undefined>
  /** Resolves once every running Sentinel names a primary other than `oldPort`; the milliseconds it took. Rejects after `timeoutMs`. */
  waitForNewPrimary (oldPort: number, timeoutMs?: number): Promise<number>
  /** Stops every process and removes the configuration directory; safe to call twice. */
  stop (): Promise<void>
}

/**
 * A primary, its replica and three Sentinels (`redis-server <conf> --sentinel`), each a named,
 * managed process on a free port of 127.0.0.1, their files in one temporary directory removed
 * by stop. Resolves once the replica is in sync and every Sentinel names the primary and knows
 * the replica and the two other Sentinels: a failover can happen from then on.
 */
export async function startRedisHa (onLog: LogSink = () => {}, options: Pick<ProcessSpec, 'ownProcessGroup'> = {}): Promise<RedisHa> {
  const dir = mkdtempSync(join(tmpdir(), 'auth-cluster-redis-ha-'))
  const started: HaNode[] = []
  const stop = async (): Promise<void> => {
    for (const p of started) p.expectExit()
    await Promise.all(started.splice(0).map(async (p) => { await p.stop('SIGTERM', 2000) }))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // Nothing on disk but what replication needs, in the temporary directory (--dir): the
    // replica receives the primary's snapshot there.
    const server = (extra: string[]) => (port: number): string[] => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0', '--dir', dir, '--loglevel', 'warning', ...extra]
    const primary = await startRedisServer('redis-primary', server([]), onLog, options)
    started.push(primary)
    const replica = await startRedisServer('redis-replica', server(['--replicaof', '127.0.0.1', String(primary.port)]), onLog, options)
    started.push(replica)
    const sentinels: HaNode[] = []
    for (let i = 1; i <= 3; i++) {
      const sentinel = await startRedisServer(`sentinel-${i}`, (port) => {
        // Sentinel rewrites its own file (what it learns: replicas, other Sentinels, epochs), so
        // each gets a writable one of its own.
        const file = join(dir, `sentinel-${i}-${port}.conf`)
        writeFileSync(file, [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${primary.port} ${SENTINEL_QUORUM}`,
          `sentinel down-after-milliseconds ${SENTINEL_NAME} ${SENTINEL_DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${SENTINEL_NAME} ${SENTINEL_FAILOVER_TIMEOUT_MS}`,
          `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
          ''
        ].join('\n'))
        return [file, '--sentinel', '--loglevel', 'warning']
      }, onLog, options)
      started.push(sentinel)
      sentinels.push(sentinel)
    }
    await waitUntilReady(primary.port, replica.port, sentinels, 30_000)

    const askSentinels = async (): Promise<Array<number | undefined>> => await Promise.all(sentinels.filter((s) => s.running).map(async (s) => await sentinelPrimary(s.port)))
    return {
      primary,
      replica,
      sentinels,
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      name: SENTINEL_NAME,
      byName: new Map(started.map((p) => [p.name, p])),
      async primaryPort () {
        return (await askSentinels()).find((p) => p !== undefined)
      },
      async waitForNewPrimary (oldPort, timeoutMs = FAILOVER_WITHIN_MS * 3) {
        const from = Date.now()
        while (Date.now() - from < timeoutMs) {
          const named = await askSentinels()
          if (named.length > 0 && named.every((p) => p !== undefined && p !== oldPort)) return Date.now() - from
          await sleep(50)
        }
        throw new Error(`the Sentinels still named 127.0.0.1:${oldPort} (or nothing) as primary after ${timeoutMs} ms`)
      },
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Runs one command against 127.0.0.1:port on a short-lived connection; undefined when it cannot. */
async function ask<T> (port: number, command: (r: Redis) => Promise<T>): Promise<T | undefined> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000, connectTimeout: 1000, retryStrategy: () => null })
  r.on('error', () => {})
  try {
    await r.connect()
    return await command(r)
  } catch {
    return undefined
  } finally {
    r.disconnect()
  }
}

/** The primary's port a Sentinel names now. */
async function sentinelPrimary (port: number): Promise<number | undefined> {
  const reply = await ask(port, async (r) => await r.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME)) as [string, string] | null | undefined
  return Array.isArray(reply) ? Number(reply[1]) : undefined
}

/** SENTINEL MASTER's reply (a flat list of names and values) as an object. */
function fields (reply: unknown): Record<string, string> {
  const list = Array.isArray(reply) ? reply as string[] : []
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = String(list[i + 1])
  return out
}

async function waitUntilReady (primaryPort: number, replicaPort: number, sentinels: HaNode[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    const info = await ask(replicaPort, async (r) => await r.info('replication')) ?? ''
    const states = await Promise.all(sentinels.map(async (s) => fields(await ask(s.port, async (r) => await r.call('SENTINEL', 'MASTER', SENTINEL_NAME)))))
    const inSync = info.includes('master_link_status:up')
    const agreed = states.every((m) => m.port === String(primaryPort) && m['num-slaves'] === '1' && m['num-other-sentinels'] === String(sentinels.length - 1) && !(m.flags ?? '').includes('down'))
    if (inSync && agreed) return
    last = `replica ${inSync ? 'in sync' : 'not in sync yet'}; Sentinels: ${states.map((m, i) => `sentinel-${i + 1} primary ${m.port ?? '?'}, ${m['num-slaves'] ?? '?'} replica(s), ${m['num-other-sentinels'] ?? '?'} other Sentinel(s)`).join('; ')}`
    await sleep(100)
  }
  throw new Error(`Redis HA not ready within ${timeoutMs} ms: ${last}`)
}
