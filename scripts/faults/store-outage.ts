import type { Cluster } from '../cluster.ts'
import { describe } from './kill-server.ts'
import { sleep, startLoad, timeUntil } from './load.ts'
import { countStatuses, getJson, loginMany, percentile, type FaultResult } from './support.ts'

/** What an outage of the session store (or the revocation list) measured. */
export interface StoreOutageFigures {
  /** From the stop to the end of the first 503 answered after it (undefined: none within 5 s). */
  detectMs: number | undefined
  /** From the store answering again to the first of the unbroken run of 200s to the end (undefined: never). */
  recoverMs: number | undefined
  /**
   * Answers by status (0: none) for requests that ended before the stop, overlapped the outage,
   * started after the store was back but before recoverMs, and started after that.
   */
  statuses: { before: Record<number, number>, during: Record<number, number>, recovering: Record<number, number>, recovered: Record<number, number> }
  /** The longest any request overlapping the outage took, whatever its answer, and the longest 503. */
  slowestDuringMs: number
  slowest503Ms: number
  /** Sessions logged in before the outage, and how many still work after it. */
  sessions: number
  sessionsKept: number
  /** Whether the balancer and every server were still running at the end. */
  allRunning: boolean
  /** What each server's /health said of its store at the end. */
  storeHealth: unknown[]
}

/** How the scenario breaks the store and brings it back. */
export interface StoreUnderTest {
  /** As the notes and checks call it: Redis, PostgreSQL. */
  name: string
  kill (): Promise<void>
  /** Starts it again on the same port and data, after a kill. */
  restart (): Promise<void>
  freeze (): void
  thaw (): void
}

export interface StoreOutageOptions {
  /**
   * kill: SIGKILL, then the same store again on the same port and data (what it had
   * acknowledged survives). freeze: SIGSTOP, then SIGCONT: it hangs with its connections open,
   * then carries on.
   */
  how: 'kill' | 'freeze'
  outageMs: number
  sessions: number
  connections: number
  /** The mode, as the report names it. */
  mode: string
  /** The fault, as the report names it. */
  fault: string
}

/**
 * The store taken away under load through the balancer, and brought back. Detect: the stop ->
 * the first 503. Recover: the store answering again -> the first of an unbroken run of 200s to
 * the end. Failed: during the outage anything but a 503 answered within a second (a 401, a 500,
 * a hang); outside it, anything but a 200.
 */
export async function measureStoreOutage (cluster: Cluster, store: StoreUnderTest, options: StoreOutageOptions): Promise<FaultResult<StoreOutageFigures>> {
  const { how, outageMs, sessions: sessionCount, connections } = options
  const { name } = store
  const url = cluster.url
  const sessions = await loginMany(url, sessionCount)
  const load = startLoad({ url, tokens: sessions.map((s) => s.token), connections, maxDurationMs: 60_000 })
  await sleep(1000)

  const downAt = load.now()
  if (how === 'kill') await store.kill()
  else store.freeze()
  // The first 503 answered after the stop, in flight at that moment or sent after it.
  const firstDown = async (): Promise<boolean> => load.records.some((r) => r.status === 503 && r.end >= downAt)
  const detectWaitMs = await timeUntil(firstDown, 5000, 5)
  const detected = load.records.filter((r) => r.status === 503 && r.end >= downAt).sort((a, b) => a.end - b.end)[0]
  const detectMs = detectWaitMs === undefined || detected === undefined ? undefined : detected.end - downAt
  await sleep(outageMs)
  if (how === 'kill') await store.restart()
  else store.thaw()
  const backAt = load.now()
  await timeUntil(() => load.records.filter((r) => r.start > backAt).length > 200, 10_000)
  await sleep(500)
  const records = await load.stop()

  const during = records.filter((r) => r.end > downAt && r.start < backAt)
  const outside = records.filter((r) => !(r.end > downAt && r.start < backAt))
  const badDuring = during.filter((r) => !(r.status === 200 || (r.status === 503 && r.end - r.start < 1000)))
  const after = outside.filter((r) => r.start >= backAt).sort((a, b) => a.start - b.start)
  const lastBad = after.findLastIndex((r) => r.status !== 200)
  const firstGood = after[lastBad + 1]
  const recoverMs = firstGood === undefined ? undefined : Math.max(0, firstGood.end - backAt)
  const badOutside = outside.filter((r) => r.status !== 200 && !(r.start >= backAt && r.start < backAt + (recoverMs ?? 0) && r.status === 503))
  const slowest503 = Math.max(0, ...during.filter((r) => r.status === 503).map((r) => r.end - r.start))

  // The sessions from before the outage: the store kept them.
  const kept = await Promise.all(sessions.map(async (s) => (await fetch(`${url}/feeds`, { headers: { authorization: `Bearer ${s.token}` }, signal: AbortSignal.timeout(5000) })).status === 200))
  const alive = [cluster.balancer, ...cluster.servers].every((p) => p.running)
  const health = await Promise.all(cluster.servers.map(async (s) => (await getJson(`${s.url}/health`)).body.store))
  const failed = [...badDuring, ...badOutside]
  const count503 = during.filter((r) => r.status === 503).length
  return {
    fault: options.fault,
    mode: options.mode,
    requests: records.length,
    failed: failed.length,
    detectMs,
    recoverMs,
    notes: `${count503} answered 503 while ${name} was away (slowest ${Math.round(slowest503)} ms, p99 ${Math.round(percentile(during.filter((r) => r.status === 503).map((r) => r.end - r.start), 99))} ms); ${kept.filter(Boolean).length} of ${sessions.length} sessions kept${failed.length > 0 ? `; failed: ${describe(failed)}` : ''}`,
    checks: [
      { name: `the first 503 comes within a second of ${name} going away`, ok: detectMs !== undefined && detectMs < 1000 },
      { name: `while ${name} is away every answer is a 503 within a second: no 401, no 500, no hang`, ok: badDuring.length === 0 && count503 > 0 },
      { name: `service resumes within two seconds of ${name} returning`, ok: recoverMs !== undefined && recoverMs < 2000 },
      { name: 'and then every request succeeds', ok: badOutside.length === 0 },
      { name: `every session from before the outage still works (${name} kept them)`, ok: kept.every(Boolean) },
      { name: 'no process died', ok: alive },
      { name: 'every server reports its store up again', ok: health.every((s) => s === 'up') }
    ],
    figures: {
      detectMs,
      recoverMs,
      statuses: {
        before: countStatuses(outside.filter((r) => r.start < backAt)),
        during: countStatuses(during),
        recovering: countStatuses(after.filter((r) => r.start < backAt + (recoverMs ?? Infinity))),
        recovered: countStatuses(after.filter((r) => r.start >= backAt + (recoverMs ?? Infinity)))
      },
      slowestDuringMs: Math.max(0, ...during.map((r) => r.end - r.start)),
      slowest503Ms: slowest503,
      sessions: sessions.length,
      sessionsKept: kept.filter(Boolean).length,
      allRunning: alive,
      storeHealth: health
    }
  }
}
