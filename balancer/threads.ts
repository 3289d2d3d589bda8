// BALANCER_THREADS: the balancer's proxy on several threads sharing one listening port. The main
// thread is the leader: it proxies like the others, and alone runs the health checks, the
// dashboard and /_balancer/stats. Each other thread (thread.ts, a worker_thread) proxies, takes
// the health the leader found, and relays /_balancer/* to it. Round robin stays one rotation: its
// positions are Int32s on a SharedArrayBuffer every thread takes turns on with Atomics, which is
// why threads and not processes (the cluster module shares no memory; a counter over IPC would
// cost a message per request). The kernel spreads connections over the threads (SO_REUSEPORT).
import net from 'node:net'
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { createBalancer } from './balancer.ts'
import type { AnswerTotals, Balancer, BalancerOptions, BalancerStats } from './balancer.ts'
import type { BalancerConfig } from './config.ts'
import type { RequestEvent } from './events.ts'
import type { LeaderRole, ThreadStats } from './thread-role.ts'

/** What the leader tells a follower. */
export type LeaderMessage =
  | { type: 'health', pool: string, url: string, healthy: boolean }
  | { type: 'upstreams', pool: string, urls: string[] }
  | { type: 'active', active: boolean }
  | { type: 'stats', id: number }
  | { type: 'close' }

/** What a follower tells the leader. */
export type FollowerMessage =
  | { type: 'listening' }
  | { type: 'down', pool: string, url: string }
  | { type: 'requests', events: RequestEvent[], totals: AnswerTotals }
  | { type: 'totals', totals: AnswerTotals }
  | { type: 'stats', id: number, stats: BalancerStats }

/** What a follower starts from (workerData). */
export interface FollowerData {
  thread: number
  /** The leader's config, with the port it listens on (PORT=0 resolved). */
  config: BalancerConfig
  cursors: Int32Array
  adminUrl: string
  /** Each pool's upstreams and their health as the leader knows them now. */
  pools: Array<{ name: string, upstreams: Array<{ url: string, healthy: boolean }> }>
}

export interface ThreadGroup {
  /** For createBalancer's `thread` option on the main thread. */
  readonly role: LeaderRole
  /** Starts the other threads on the port the leader listens on; resolves once every one listens. */
  start (balancer: Balancer): Promise<void>
  /** Has every other thread stop taking connections and finish its requests; resolves once all have exited. */
  close (): Promise<void>
}

/** The balancer on config.threads threads (1: the main thread alone, as createBalancer). */
export interface ThreadedBalancer {
  /** The main thread's: the leader's, with health, dashboard and stats for all. */
  readonly balancer: Balancer
  /** Listens on every thread; resolves with the URL once all of them listen. */
  listen (): Promise<string>
  /** Every thread stops taking connections at once and finishes what it has. */
  close (): Promise<void>
}

/**
 * The main thread's balancer and, with config.threads above 1, the others on the same port.
 * `onFailure`: a thread died after it listened; the caller closes the whole balancer (a balancer
 * short of a thread would serve on, slower, with nobody told).
 */
export function createThreadedBalancer (config: BalancerConfig, logger: Logger, options: BalancerOptions & { onFailure: (err: Error) => void }): ThreadedBalancer {
  const { onFailure, ...balancerOptions } = options
  const group = (config.threads ?? 1) > 1 ? createThreadGroup({ config, logger, onFailure }) : undefined
  const balancer = createBalancer(config, logger, { ...balancerOptions, ...(group === undefined ? {} : { thread: group.role }) })
  return {
    balancer,
    async listen () {
      if (group !== undefined && config.port !== 0) await portFree(config.host, config.port)
      const url = await balancer.listen()
      await group?.start(balancer)
      return url
    },
    async close () {
      await Promise.all([balancer.close(), group?.close()])
    }
  }
}

/**
 * SO_REUSEPORT lets any process of the same user join the port: a second balancer started on a
 * taken port would share it, silently, instead of failing. A plain bind first fails as usual
 * (EADDRINUSE), and is let go at once.
 */
async function portFree (host: string, port: number): Promise<void> {
  const probe = net.createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject)
    probe.listen({ host, port, exclusive: true }, () => { resolve() })
  })
  await new Promise<void>((resolve) => { probe.close(() => { resolve() }) })
}

const STATS_TIMEOUT_MS = 5000
const THREAD_ENTRY = new URL('./thread.ts', import.meta.url)

export function createThreadGroup (options: { config: BalancerConfig, logger: Logger, onFailure: (err: Error) => void }): ThreadGroup {
  const { config, logger, onFailure } = options
  const count = config.threads ?? 1
  // One slot per pool: the default pool's, then each of config.pools' (balancer.ts, shared()).
  const cursors = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * (1 + (config.pools?.length ?? 0))))
  const workers: Worker[] = []
  const totals = new Map<number, AnswerTotals>()
  const pending = new Map<number, (stats: BalancerStats | undefined) => void>()
  let nextId = 0
  let balancer: Balancer | undefined
  let closing = false

  function broadcast (message: LeaderMessage): void {
    for (const worker of workers) worker.postMessage(message)
  }

  function onMessage (thread: number, message: FollowerMessage): void {
    if (message.type === 'down') {
      const pool = balancer?.pool(message.pool)
      const upstream = pool?.upstreams.find((u) => u.url === message.url)
      if (pool !== undefined && upstream !== undefined) pool.markDown(upstream, `thread ${thread} could not connect`)
    } else if (message.type === 'requests') {
      totals.set(thread, message.totals)
      for (const event of message.events) balancer?.events.request(event)
    } else if (message.type === 'totals') {
      totals.set(thread, message.totals)
    } else if (message.type === 'stats') {
      pending.get(message.id)?.(message.stats)
      pending.delete(message.id)
    }
  }

  function askStats (worker: Worker, thread: number): Promise<ThreadStats> {
    return new Promise((resolve) => {
      const id = nextId++
      const timer = setTimeout(() => {
        pending.delete(id)
        resolve({ thread, stats: undefined })
      }, STATS_TIMEOUT_MS)
      pending.set(id, (stats) => {
        clearTimeout(timer)
        resolve({ thread, stats })
      })
      worker.postMessage({ type: 'stats', id } satisfies LeaderMessage)
    })
  }

  const role: LeaderRole = {
    kind: 'leader',
    cursors,
    peers: {
      stats: async () => await Promise.all(workers.map((w, i) => askStats(w, i + 1))),
      totals: () => [...totals.values()],
      onUpstreamChange: (pool, view) => { broadcast({ type: 'health', pool, url: view.url, healthy: view.healthy }) },
      onUpstreamsChange: (pool, urls) => { broadcast({ type: 'upstreams', pool, urls }) },
      onEventsActive: (active) => { broadcast({ type: 'active', active }) }
    }
  }

  function spawn (thread: number, data: FollowerData): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(THREAD_ENTRY, { workerData: data, name: `balancer-${thread}` })
      workers.push(worker)
      let listening = false
      worker.on('message', (message: FollowerMessage) => {
        if (message.type === 'listening') {
          listening = true
          resolve()
        } else {
          onMessage(thread, message)
        }
      })
      worker.on('error', (err: Error) => {
        if (!listening) reject(err)
        else if (!closing) onFailure(err)
      })
      worker.on('exit', (code) => {
        if (!listening) reject(new Error(`balancer thread ${thread} exited with code ${code} before it listened`))
        else if (!closing) onFailure(new Error(`balancer thread ${thread} exited with code ${code}`))
      })
    })
  }

  async function start (b: Balancer): Promise<void> {
    balancer = b
    const address = b.server.address()
    const port = typeof address === 'object' && address !== null ? address.port : config.port
    const pools = [b.pool('default'), ...(config.pools ?? []).map((p) => b.pool(p.name))].flatMap((p) => p === undefined
      ? []
      : [{ name: p.name, upstreams: p.upstreams.map((u) => ({ url: u.url, healthy: u.healthy })) }])
    await Promise.all(Array.from({ length: count - 1 }, async (_, i) => {
      await spawn(i + 1, { thread: i + 1, config: { ...config, port }, cursors, adminUrl: b.adminUrl, pools })
    }))
    logger.info({ threads: count, port }, `balancer proxying on ${count} threads`)
  }

  async function close (): Promise<void> {
    closing = true
    const exited = workers.map((w) => new Promise<void>((resolve) => {
      if (w.threadId === -1) resolve()
      else w.once('exit', () => { resolve() })
    }))
    broadcast({ type: 'close' })
    await Promise.all(exited)
  }

  return { role, start, close }
}
