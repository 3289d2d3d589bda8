import pg from 'pg'
import { startCluster, type Cluster } from '../cluster.ts'
import { countsBetween, hitRatio, readSessionCacheCounts, statementsPerRequest, type SessionCacheCounts } from '../lib/session-cache-figures.ts'
import { describe } from './kill-server.ts'
import { sleep, startLoad, timeUntil } from './load.ts'
import { countStatuses, loginMany, loginOnce, type FaultResult } from './support.ts'

/** A read of a logged-out session accepted later than this after its logout was answered breaks the promise. */
export const LOGOUT_REACH_BOUND_MS = 100

export interface InvalidationCutFigures {
  /** How long the channel was kept cut: every LISTEN connection terminated again as soon as it came back. */
  cutMs: number
  /** Each time a server's LISTEN connection was terminated. */
  terminations: number
  /** Sessions logged out while the channel was cut, and the answers their logouts got. */
  logouts: Record<number, number>
  /** Reads of those sessions begun more than LOGOUT_REACH_BOUND_MS after their logout was answered, and how many were accepted. */
  readsAfterLogout: number
  acceptedAfterLogout: number
  /** From the end of the cut to every server listening again (undefined: not within 10 s). */
  relistenMs: number | undefined
  /** Times a server dropped its whole cache (session_cache_invalidations_total{kind="flush"}) during and after the cut. */
  flushes: number
  statuses: { before: Record<number, number>, during: Record<number, number>, after: Record<number, number> }
  statementsPerRequest: { before: number, during: number, after: number }
  hitRatio: { before: number, during: number, after: number }
  /** What the caches did for the reads during the cut and after it (session_cache_lookups_total). */
  lookups: { during: SessionCacheCounts['lookups'], after: SessionCacheCounts['lookups'] }
  /** Reads of the sessions still logged in, begun once every server listened again. */
  liveReadsAfter: number
  allRunning: boolean
}

export interface InvalidationCutOptions {
  cutMs?: number
  sessions?: number
  connections?: number
}

const LISTENERS = "application_name LIKE 'auth-cluster % invalidations'"

/**
 * postgres mode with SESSION_CACHE=local and NOTIFY: every server's LISTEN connection cut under
 * load (pg_terminate_backend, again each time one comes back, for `cutMs`), and a third of the
 * sessions logged out at the start of it, when no server can hear a logout. A server without its
 * channel must not use its cache (it would miss those logouts) and must drop it once it listens
 * again (it did miss them). Failed: a read of a logged-out session accepted after the bound, or
 * any answer but a 200 or that 401.
 */
export async function invalidationCut (options: InvalidationCutOptions = {}): Promise<FaultResult<InvalidationCutFigures>> {
  const { cutMs = 1500, sessions: sessionCount = 12, connections = 8 } = options
  let cluster: Cluster | undefined
  const admin = { client: undefined as pg.Client | undefined }
  try {
    cluster = await startCluster({ mode: 'postgres', sessionCache: 'local', servers: 3, logLevel: 'error' })
    const url = cluster.url
    const urls = cluster.servers.map((s) => s.url)
    const client = new pg.Client({ connectionString: cluster.databaseUrl, application_name: 'auth-cluster faults' })
    admin.client = client
    client.on('error', () => {})
    await client.connect()
    const listeningEverywhere = async (): Promise<boolean> =>
      (await Promise.all(urls.map(async (u) => /^session_cache_listening\{[^}]*\} 1$/m.test(await (await fetch(`${u}/metrics`, { signal: AbortSignal.timeout(2000) })).text())))).every(Boolean)
    if (await timeUntil(listeningEverywhere, 10_000) === undefined) throw new Error('the servers never listened for logouts')

    const sessions = await loginMany(url, sessionCount)
    const loggedOut = sessions.map((_, i) => i).filter((i) => i % 3 === 0)
    const load = startLoad({ url, tokens: sessions.map((s) => s.token), connections, maxDurationMs: 60_000 })
    await sleep(500)
    const atWarm = await readSessionCacheCounts(urls)
    await sleep(1000)
    const atStart = await readSessionCacheCounts(urls)
    const cutAt = load.now()
    let terminations = 0
    const cut = { on: true }
    const cutter = (async () => {
      while (cut.on) {
        terminations += (await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${LISTENERS}`)).rowCount ?? 0
        await sleep(25)
      }
    })()
    // At the start of the cut, when no server hears a NOTIFY.
    await sleep(20)
    const logoutAnswered = new Map<number, number>()
    const logouts: number[] = []
    await Promise.all(loggedOut.map(async (i) => {
      const res = await fetch(`${url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${sessions[i]?.token ?? ''}` }, signal: AbortSignal.timeout(5000) })
      await res.arrayBuffer()
      logouts.push(res.status)
      logoutAnswered.set(i, load.now())
    }))
    await sleep(Math.max(0, cutMs - (load.now() - cutAt)))
    cut.on = false
    await cutter
    const atCutEnd = await readSessionCacheCounts(urls)
    const endAt = load.now()
    const relistenWait = await timeUntil(listeningEverywhere, 10_000, 10)
    const relistenMs = relistenWait === undefined ? undefined : load.now() - endAt
    const atRelisten = await readSessionCacheCounts(urls)
    const relistenedAt = load.now()
    // A fresh login keeps some reads hitting the caches after they were dropped, whichever session the load reads.
    await loginOnce(url)
    await sleep(1500)
    const records = await load.stop()
    const atEnd = await readSessionCacheCounts(urls)

    const after = (i: number): number => (logoutAnswered.get(i) ?? Infinity) + LOGOUT_REACH_BOUND_MS
    const readsOfEnded = records.filter((r) => loggedOut.includes(r.session) && r.start >= after(r.session))
    const accepted = readsOfEnded.filter((r) => r.status === 200)
    const odd = records.filter((r) => !(r.status === 200 || (r.status === 401 && loggedOut.includes(r.session))))
    const failed = [...accepted, ...odd]
    const before = countsBetween(atWarm, atStart)
    const during = countsBetween(atStart, atCutEnd)
    const afterCut = countsBetween(atRelisten, atEnd)
    const flushCount = countsBetween(atStart, atEnd).flushes
    const alive = [cluster.balancer, ...cluster.servers].every((p) => p.running)
    const per = (c: SessionCacheCounts): string => statementsPerRequest(c).toFixed(3)
    // A session the database does not hold is never cached: every read of a logged-out one asks it.
    const liveReadsAfter = records.filter((r) => r.start >= relistenedAt && !loggedOut.includes(r.session)).length
    return {
      fault: `every server's LISTEN connection cut (pg_terminate_backend, again as each came back) for ${cutMs / 1000} s, ${loggedOut.length} of ${sessionCount} sessions logged out at its start`,
      mode: 'postgres+local-cache',
      requests: records.length,
      failed: failed.length,
      detectMs: undefined,
      recoverMs: relistenMs,
      notes: `${terminations} LISTEN connections terminated; ${accepted.length} of ${readsOfEnded.length} reads of the logged-out sessions accepted after their logout; every server listening again ${relistenMs === undefined ? 'never' : `${Math.round(relistenMs)} ms`} after the cut, ${flushCount} cache drops; database statements per request ${per(before)} before, ${per(during)} during the cut (the caches off), ${per(afterCut)} after (each read of a logged-out session is one: nothing caches what the database does not hold); hit ratio ${hitRatio(before).toFixed(2)}, ${hitRatio(during).toFixed(2)}, ${hitRatio(afterCut).toFixed(2)}${failed.length > 0 ? `; failed: ${describe(failed)}` : ''}`,
      checks: [
        { name: 'every logout during the cut is recorded (204)', ok: logouts.every((s) => s === 204) },
        { name: `no server accepts a logged-out session ${LOGOUT_REACH_BOUND_MS} ms or more after its logout, during the cut or after`, ok: accepted.length === 0 && readsOfEnded.length > 0 },
        { name: 'no answer but a 200, or a 401 for a logged-out session: no 503 (the database was up throughout)', ok: odd.length === 0 },
        { name: 'while the channel is cut the caches are off: the database takes the reads', ok: statementsPerRequest(during) > 0.5 },
        { name: 'every server listens again within two seconds of the cut ending, and drops its cache', ok: relistenMs !== undefined && relistenMs < 2000 && flushCount >= 3 },
        { name: 'then the caches answer most reads of the live sessions again', ok: afterCut.lookups.hit > liveReadsAfter / 2 },
        { name: 'no process died', ok: alive }
      ],
      figures: {
        cutMs,
        terminations,
        logouts: countStatuses(logouts.map((status) => ({ status }))),
        readsAfterLogout: readsOfEnded.length,
        acceptedAfterLogout: accepted.length,
        relistenMs,
        flushes: flushCount,
        statuses: {
          before: countStatuses(records.filter((r) => r.end <= cutAt)),
          during: countStatuses(records.filter((r) => r.end > cutAt && r.start < endAt)),
          after: countStatuses(records.filter((r) => r.start >= endAt))
        },
        statementsPerRequest: { before: statementsPerRequest(before), during: statementsPerRequest(during), after: statementsPerRequest(afterCut) },
        hitRatio: { before: hitRatio(before), during: hitRatio(during), after: hitRatio(afterCut) },
        lookups: { during: during.lookups, after: afterCut.lookups },
        liveReadsAfter,
        allRunning: alive
      }
    }
  } finally {
    await admin.client?.end().catch(() => {})
    await cluster?.stop()
  }
}
