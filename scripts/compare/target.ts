import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { AUTH_MODES } from '../../services/auth/authenticator.ts'
import { startCluster, type Cluster } from '../cluster.ts'
import type { LogSink } from '../lib/managed-process.ts'
import { balancerAllHealthy } from '../lib/probes.ts'
import { authModeOf, sessionCacheOf, usesPostgres, usesRedis, type CompareMode } from './modes.ts'
import { startPrivatePostgres, type PrivatePostgres } from './private-postgres.ts'
import { startPrivateRedis, type PrivateRedis } from './private-redis.ts'
import { processCpuSeconds, processTreeCpuSeconds } from './process-cpu.ts'
import { readCounters, type ServerCounters } from './prometheus.ts'

/** A cluster to measure: one `npm run compare` started, or one already running at --url. */
export interface Target {
  readonly mode: CompareMode
  /** The balancer: where the load goes. */
  readonly url: string
  /** How many app servers answer behind the balancer. */
  readonly serverCount: number
  /** What the user is told this is. */
  readonly description: string
  /** Each app server's own counters, by server id. */
  scrape (): Promise<Map<string, ServerCounters>>
  /** The balancer process's CPU seconds so far; undefined when its process cannot be seen (--url). */
  balancerCpuSeconds (): number | undefined
  /** All app servers' CPU seconds so far, from /proc (read each time: a restart changes their pids); undefined when not visible (--url). */
  serverCpuSeconds (): number | undefined
  /** The session store's CPU seconds so far (the run's own Redis); undefined when there is none or it cannot be seen (PostgreSQL works in a process per connection). */
  storeCpuSeconds?: () => number | undefined
  /** The run's own Redis (the session store, the revocation list, or a cache in front of PostgreSQL): its CPU seconds so far; undefined when there is none or it cannot be seen. */
  redisCpuSeconds?: () => number | undefined
  /** The run's own PostgreSQL, the postmaster and its backends together; undefined when there is none or it cannot be seen. */
  postgresCpuSeconds?: () => number | undefined
  /** jwt mode on a local cluster: two keys, and the second pass of a rotation; undefined elsewhere. */
  readonly keys?: KeyRotation
  /** jwt-eddsa on a local cluster: the issuers' CPU seconds so far (they answer logins and refreshes); undefined elsewhere. */
  readonly issuerCpuSeconds?: () => number | undefined
  stop (): Promise<void>
}

/**
 * A cluster started with JWT_SECRETS=old,new (the first pass of a rotation: "new" accepted,
 * "old" signs) whose servers `rotate()` all restarts with JWT_SECRETS=new,old, the second pass.
 */
export interface KeyRotation {
  /** The kids in the order the servers list them after rotate(): the first signs. */
  readonly kids: { newer: string, older: string }
  /** Restarts every server with the newer key first; resolves, with the seconds it took, once the balancer has them all back. */
  rotate (): Promise<number>
}

async function getText (url: string, timeoutMs = 5000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.text()
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${text.slice(0, 200)}`)
  return text
}

async function scrapeEach (urls: string[]): Promise<Map<string, ServerCounters>> {
  const texts = await Promise.all(urls.map(async (u) => await getText(`${u}/metrics`)))
  const counters = new Map<string, ServerCounters>()
  for (const text of texts) {
    const c = readCounters(text)
    counters.set(c.server, c)
  }
  return counters
}

export interface LocalTargetOptions {
  mode: CompareMode
  servers: number
  /** Put the delay proxy between the servers and every store they ask on a request (Redis, PostgreSQL), adding this many ms per round trip. */
  storeLatencyMs?: number
  onLog?: LogSink
}

/**
 * The balancer's threads (BALANCER_THREADS) for a machine with this many cores. One thread
 * proxies about 30,000 requests a second (npm run bench:balancer); below 8 cores the app
 * servers, the load generator and the stores take the cores first, and a second thread would
 * only compete with them. From 8, one thread per 4 cores, at most 4.
 */
export function balancerThreadsFor (cores: number): number {
  return cores >= 8 ? Math.min(4, Math.floor(cores / 4)) : 1
}

/** What the report says of the balancer's threads on this machine: nothing when one. */
export function balancerThreadsNote (cores = cpus().length): string {
  const threads = balancerThreadsFor(cores)
  return threads > 1 ? ` (on ${threads} threads: ${cores} cores)` : ''
}

const OLDER_KID = 'old'
const NEWER_KID = 'new'

/**
 * A fresh cluster of real processes, with the stores its servers ask on every request started
 * here (a private Redis, a private PostgreSQL), each behind the delay proxy when storeLatencyMs > 0.
 * jwt mode gets two keys, listed as in the middle of a rotation (once is enough: jwt-revocation
 * checks signatures the same way). jwt-eddsa gets an issuer (and the Redis of its refresh tokens,
 * which no read asks, from startCluster), with access tokens that outlive any run.
 */
export async function startLocalTarget (options: LocalTargetOptions): Promise<Target> {
  const { mode, servers, storeLatencyMs = 0, onLog } = options
  const authMode = authModeOf(mode)
  const older = `${OLDER_KID}:${randomBytes(48).toString('base64url')}`
  const newer = `${NEWER_KID}:${randomBytes(48).toString('base64url')}`
  let redis: PrivateRedis | undefined
  let postgres: PrivatePostgres | undefined
  let cluster: Cluster
  const cores = cpus().length
  const balancerThreads = balancerThreadsFor(cores)
  try {
    if (usesRedis(mode)) redis = await startPrivateRedis({ delayMs: storeLatencyMs, onLog })
    if (usesPostgres(mode)) postgres = await startPrivatePostgres({ delayMs: storeLatencyMs, onLog })
    const sessionCache = sessionCacheOf(mode)
    cluster = await startCluster({
      mode: authMode,
      servers,
      logLevel: 'warn',
      balancerThreads,
      redisUrl: redis?.url,
      databaseUrl: postgres?.url,
      onLog,
      ...(sessionCache !== undefined ? { sessionCache } : {}),
      ...(mode === 'jwt' ? { jwtSecrets: `${older},${newer}` } : {}),
      ...(mode === 'jwt-revocation' ? { jwtRevocation: true } : {}),
      // The most the issuer allows: no token may expire mid-run (compare never refreshes the load's tokens).
      ...(mode === 'jwt-eddsa' ? { signing: 'eddsa' as const, issuerEnv: { ACCESS_TTL_SECONDS: '3600' } } : {})
    })
  } catch (err) {
    await redis?.stop()
    await postgres?.stop()
    throw err
  }
  const urls = cluster.servers.map((s) => s.url)
  const balancerPid = cluster.balancer.pid
  const running = cluster
  const keys: KeyRotation | undefined = mode !== 'jwt'
    ? undefined
    : {
        kids: { newer: NEWER_KID, older: OLDER_KID },
        async rotate () {
          const started = performance.now()
          // Nothing is measured meanwhile, so every server restarts at once.
          await Promise.all(running.servers.map(async (s) => await s.restartWith({ JWT_SECRETS: `${newer},${older}` })))
          await allHealthy(running.url)
          return (performance.now() - started) / 1000
        }
      }
  const sumCpu = (pids: Array<number | undefined>): number | undefined => {
    const each = pids.map((pid) => pid === undefined ? undefined : processCpuSeconds(pid))
    return each.every((c) => c !== undefined) ? (each as number[]).reduce((a, b) => a + b, 0) : undefined
  }
  const delayed = storeLatencyMs > 0 && (redis !== undefined || postgres !== undefined)
    ? `, ${[redis !== undefined ? 'Redis' : '', postgres !== undefined ? 'PostgreSQL' : ''].filter((x) => x !== '').join(' and ')} ${storeLatencyMs} ms away`
    : ''
  return {
    mode,
    url: cluster.url,
    serverCount: servers,
    description: `${servers} app server${servers === 1 ? '' : 's'} behind the balancer${balancerThreadsNote(cores)}${cluster.issuers.length > 0 ? ', logins and refreshes to an issuer' : ''}${delayed}`,
    scrape: async () => await scrapeEach(urls),
    balancerCpuSeconds: () => processCpuSeconds(balancerPid),
    // Read each time: a restart changes the servers' pids.
    serverCpuSeconds: () => sumCpu(running.servers.map((s) => s.pid)),
    storeCpuSeconds: () => redis === undefined || postgres !== undefined ? undefined : processCpuSeconds(redis.pid),
    redisCpuSeconds: () => redis === undefined ? undefined : processCpuSeconds(redis.pid),
    postgresCpuSeconds: () => postgres === undefined ? undefined : processTreeCpuSeconds(postgres.pid),
    ...(keys === undefined ? {} : { keys }),
    ...(cluster.issuers.length === 0 ? {} : { issuerCpuSeconds: () => sumCpu(running.issuers.map((i) => i.pid)) }),
    async stop () {
      await cluster.stop()
      await redis?.stop()
      await postgres?.stop()
    }
  }
}

/** Until the balancer counts every upstream healthy again. */
async function allHealthy (url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await balancerAllHealthy(url)) return
    if (Date.now() > deadline) throw new Error(`the balancer did not see every server healthy within ${timeoutMs / 1000} s of the key rotation`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * A cluster someone else started (docker compose, npm start): the mode comes from /health
 * (jwt with a store to ask is jwt-revocation), the servers from /_balancer/stats. Each server's /metrics is read straight from it when it can be
 * reached from here, else through the balancer, which sends each GET to the next server.
 */
export async function connectToTarget (url: string): Promise<Target> {
  const base = url.replace(/\/+$/, '')
  let health: { mode?: string, store?: string }
  try {
    health = JSON.parse(await getText(`${base}/health`)) as { mode?: string, store?: string }
  } catch (err) {
    throw new Error(`nothing answers GET ${base}/health: is the cluster running? (${(err as Error).message})`)
  }
  if (!(AUTH_MODES as readonly unknown[]).includes(health.mode)) throw new Error(`${base}/health did not say which mode it runs (got ${JSON.stringify(health)})`)
  const mode: CompareMode = health.mode === 'jwt' && health.store !== undefined && health.store !== 'none' ? 'jwt-revocation' : health.mode as CompareMode

  let upstreams: string[] = []
  let strategy: string | undefined
  try {
    const stats = JSON.parse(await getText(`${base}/_balancer/stats`)) as { strategy?: string, upstreams?: Array<{ url: string, healthy: boolean }> }
    upstreams = (stats.upstreams ?? []).filter((u) => u.healthy).map((u) => u.url.replace(/\/+$/, ''))
    strategy = stats.strategy
  } catch {
    // Not our balancer, or it hides its stats: count the servers through /metrics below.
  }

  let scrape: () => Promise<Map<string, ServerCounters>>
  let direct = false
  if (upstreams.length > 0) {
    try {
      await scrapeEach(upstreams)
      direct = true
    } catch {
      // The upstreams' addresses are inside another network (compose): go through the balancer.
    }
  }
  if (direct) {
    scrape = async () => await scrapeEach(upstreams)
  } else {
    scrape = async () => await scrapeThroughBalancer(base, upstreams.length)
  }
  const serverCount = (await scrape()).size
  return {
    mode,
    url: base,
    serverCount,
    description: `the running cluster at ${base} (${serverCount} app server${serverCount === 1 ? '' : 's'}, /metrics read ${direct ? 'from each server' : 'through the balancer'}` +
      // (N-1)/N is what a round robin predicts; a sticky balancer keeps a client on one server (if the client keeps its cookie).
      `${strategy !== undefined && strategy !== 'round-robin' ? `; balancer strategy ${strategy}, so (N-1)/N need not apply` : ''})`,
    scrape,
    balancerCpuSeconds: () => undefined,
    serverCpuSeconds: () => undefined,
    async stop () {}
  }
}

/** GET /metrics through the balancer until every server has answered (round robin hands it to each in turn). */
async function scrapeThroughBalancer (base: string, expected: number): Promise<Map<string, ServerCounters>> {
  const counters = new Map<string, ServerCounters>()
  const attempts = Math.max(expected, 1) * 4 + 4
  let quiet = 0
  for (let i = 0; i < attempts; i++) {
    const c = readCounters(await getText(`${base}/metrics`))
    if (counters.has(c.server)) quiet++
    else quiet = 0
    counters.set(c.server, c)
    if (expected > 0 && counters.size >= expected) break
    // With no count to expect, stop once a full extra round brought no new server.
    if (expected === 0 && quiet > counters.size) break
  }
  return counters
}
