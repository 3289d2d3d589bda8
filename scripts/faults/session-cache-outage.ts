import { startCluster, type Cluster } from '../cluster.ts'
import { countsBetween, hitRatio, readSessionCacheCounts, sessionStatementsPerRequest, statementsPerRequest, type SessionCacheCounts } from '../lib/session-cache-figures.ts'
import { describe } from './kill-server.ts'
import { sleep, startLoad, timeUntil } from './load.ts'
import { countStatuses, getJson, loginMany, percentile, type FaultResult } from './support.ts'

/** What the shared cache's outage measured: the database took its reads, and nothing failed. */
export interface SessionCacheOutageFigures {
  /** Answers by status for requests that ended before the kill, overlapped the outage, and began after Redis was back. */
  statuses: { before: Record<number, number>, during: Record<number, number>, after: Record<number, number> }
  /** Database statements per request, and the share of reads the cache answered, in each phase (the servers' own counters). */
  statementsPerRequest: { before: number, during: number, after: number }
  /**
   * Before and after, the requests' own statements (the cache's keep-alive pings left out) and
   * the pings as a rate: a few a second per server, however many requests come, so per request
   * they weigh with the machine's speed (0.108 in all at 144 requests a second on a slow one).
   */
  sessionStatementsPerRequest: { before: number, after: number }
  pingsPerServerSecond: { before: number, after: number }
  /** Requests the servers counted before and after: the pings-included figure means little at a few hundred. */
  requests: { before: number, after: number }
  hitRatio: { before: number, during: number, after: number }
  /** What the cache did for the reads during the outage (session_cache_lookups_total). */
  lookupsDuring: SessionCacheCounts['lookups']
  /** The longest any request overlapping the outage took, and its p99. */
  slowestDuringMs: number
  p99DuringMs: number
  /** From Redis answering again to every server answering reads from it again (undefined: not within 10 s). */
  recoverMs: number | undefined
  allRunning: boolean
  /** What each server's /health said of its store (the database) at the end. */
  storeHealth: unknown[]
}

export interface SessionCacheOutageOptions {
  outageMs?: number
  sessions?: number
  connections?: number
}

/**
 * postgres mode with SESSION_CACHE=redis: the cache's Redis SIGKILLed under load, then started
 * again (empty: it keeps nothing, and needs to keep nothing). Failed: any answer but a 200, at
 * any time: the cache going away costs the database the reads, never a request.
 */
export async function sessionCacheOutage (options: SessionCacheOutageOptions = {}): Promise<FaultResult<SessionCacheOutageFigures>> {
  const { outageMs = 2000, sessions: sessionCount = 12, connections = 8 } = options
  let cluster: Cluster | undefined
  try {
    cluster = await startCluster({ mode: 'postgres', sessionCache: 'redis', servers: 3, logLevel: 'error' })
    const redis = cluster.redis
    if (redis === undefined) throw new Error('the cluster started no Redis of its own')
    const urls = cluster.servers.map((s) => s.url)
    const sessions = await loginMany(cluster.url, sessionCount)
    const load = startLoad({ url: cluster.url, tokens: sessions.map((s) => s.token), connections, maxDurationMs: 60_000 })
    await sleep(500)
    const atWarm = await readSessionCacheCounts(urls)
    const warmAt = performance.now()
    await sleep(1000)
    const atDown = await readSessionCacheCounts(urls)
    const beforeMs = performance.now() - warmAt
    const downAt = load.now()
    await redis.stop('SIGKILL', 0)
    await sleep(outageMs)
    const atBack = await readSessionCacheCounts(urls)
    await redis.start()
    const backAt = load.now()
    // Back once every server has answered a read from the cache since Redis returned.
    const hitsAtBack = await Promise.all(urls.map(async (url) => (await readSessionCacheCounts([url])).lookups.hit))
    const recoverWaitMs = await timeUntil(async () => (await Promise.all(urls.map(async (url, i) => (await readSessionCacheCounts([url])).lookups.hit > (hitsAtBack[i] ?? 0)))).every(Boolean), 10_000, 20)
    const recoverMs = recoverWaitMs === undefined ? undefined : load.now() - backAt
    const atRecovered = await readSessionCacheCounts(urls)
    const recoveredAt = performance.now()
    await sleep(1000)
    const records = await load.stop()
    const atEnd = await readSessionCacheCounts(urls)
    const afterMs = performance.now() - recoveredAt

    const before = countsBetween(atWarm, atDown)
    const during = countsBetween(atDown, atBack)
    const after = countsBetween(atRecovered, atEnd)
    const overlapping = records.filter((r) => r.end > downAt && r.start < backAt)
    const failed = records.filter((r) => r.status !== 200)
    const alive = [cluster.balancer, ...cluster.servers].every((p) => p.running)
    const health = await Promise.all(urls.map(async (url) => (await getJson(`${url}/health`)).body.store))
    const per = (c: SessionCacheCounts): string => statementsPerRequest(c).toFixed(3)
    const pingRate = (c: SessionCacheCounts, ms: number): number => c.databasePings / urls.length / (ms / 1000)
    return {
      fault: `the session cache's Redis killed (SIGKILL) for ${outageMs / 1000} s, started again empty`,
      mode: 'postgres+redis-cache',
      requests: records.length,
      failed: failed.length,
      detectMs: undefined,
      recoverMs,
      notes: `database statements per request ${per(before)} before, ${per(during)} while Redis was away (the database took the reads: ${during.lookups.bypass + during.lookups.error} of ${during.requests} past the cache), ${per(after)} after; hit ratio ${hitRatio(before).toFixed(2)} -> ${hitRatio(during).toFixed(2)} -> ${hitRatio(after).toFixed(2)}; slowest request during the outage ${Math.round(Math.max(0, ...overlapping.map((r) => r.end - r.start)))} ms${failed.length > 0 ? `; failed: ${describe(failed)}` : ''}`,
      checks: [
        { name: 'no request fails while the cache is away: no 503, every read a 200 from the database', ok: failed.length === 0 && overlapping.length > 0 },
        { name: 'while it is away the database takes the reads (about one statement per request)', ok: statementsPerRequest(during) > 0.9 },
        { name: 'every request overlapping the outage is answered within a second', ok: Math.max(0, ...overlapping.map((r) => r.end - r.start)) < 1000 },
        { name: 'the servers read from the cache again within two seconds of Redis returning', ok: recoverMs !== undefined && recoverMs < 2000 },
        { name: 'and the database is spared again (under 0.1 statements per request besides the keep-alive pings, at most 4 pings a second per server)', ok: sessionStatementsPerRequest(after) < 0.1 && pingRate(after, afterMs) <= 4 },
        { name: 'no process died', ok: alive },
        { name: 'every server reports its store up', ok: health.every((s) => s === 'up') }
      ],
      figures: {
        statuses: {
          before: countStatuses(records.filter((r) => r.end <= downAt)),
          during: countStatuses(overlapping),
          after: countStatuses(records.filter((r) => r.start >= backAt))
        },
        statementsPerRequest: { before: statementsPerRequest(before), during: statementsPerRequest(during), after: statementsPerRequest(after) },
        sessionStatementsPerRequest: { before: sessionStatementsPerRequest(before), after: sessionStatementsPerRequest(after) },
        pingsPerServerSecond: { before: pingRate(before, beforeMs), after: pingRate(after, afterMs) },
        requests: { before: before.requests, after: after.requests },
        hitRatio: { before: hitRatio(before), during: hitRatio(during), after: hitRatio(after) },
        lookupsDuring: during.lookups,
        slowestDuringMs: Math.max(0, ...overlapping.map((r) => r.end - r.start)),
        p99DuringMs: percentile(overlapping.map((r) => r.end - r.start), 99),
        recoverMs,
        allRunning: alive,
        storeHealth: health
      }
    }
  } finally {
    await cluster?.stop()
  }
}
