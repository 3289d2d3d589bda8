import type { AuthMode } from '../../services/auth/authenticator.ts'
import { startCluster } from '../cluster.ts'
import { sleep, startLoad, timeUntil } from './load.ts'
import { balancerStats, countStatuses, loginMany, type FaultResult } from './support.ts'

export interface KillServerOptions {
  mode: AuthMode
  /** Sessions logged in before the fault; the load cycles through them. */
  sessions?: number
  connections?: number
  healthIntervalMs?: number
  /**
   * The balancer's probe timeout (its default is 500 ms). The tests raise it: on a CI machine
   * running other suites beside this one, a probe of a healthy server can be slower than that,
   * and the test is about the killed server, which a refused connection marks down at once.
   */
  healthTimeoutMs?: number
}

/** What killServer measured. */
export interface KillServerFigures {
  /** From the kill to the balancer's stats showing the server down (undefined: not within 5 s). */
  detectMs: number | undefined
  /** Requests the balancer sent the killed server between marking it down and its restart. */
  requestsWhileOut: number
  /** From the restart to the first request it answered (undefined: none within 10 s). */
  rejoinMs: number | undefined
  /** Every answer the load got, by status (0: no answer). */
  statuses: Record<number, number>
  /** Answers other than 200 (memory mode: other than 200 or 401) to requests sent once it was marked down. */
  failedOnceOut: number
  /** The same for requests sent before: in flight at the kill, or before the balancer knew. */
  failedBeforeOut: number
  /** Memory mode: sessions the killed server held, and how many of them are gone after its restart. */
  sessionsHeld: number | undefined
  sessionsLost: number | undefined
}

/**
 * Kill one of three app servers (SIGKILL, a crash) under load, then start it again.
 * Detect: kill -> the balancer marks it down. Recover: the restarted process answers
 * -> the balancer sends it traffic again. Failed: in jwt and redis modes, any answer but
 * 200; in memory mode, anything but 200 or 401 (its 401s are the demo, not a fault).
 */
export async function killServer (options: KillServerOptions): Promise<FaultResult<KillServerFigures>> {
  const { mode, sessions: sessionCount = 12, connections = 8, healthIntervalMs = 1000, healthTimeoutMs } = options
  const cluster = await startCluster({ mode, servers: 3, logLevel: 'warn', healthIntervalMs, ...(healthTimeoutMs === undefined ? {} : { healthTimeoutMs }) })
  try {
    const victim = cluster.servers[1]
    if (victim === undefined) throw new Error('expected three servers')
    const sessions = await loginMany(cluster.url, sessionCount)
    const load = startLoad({ url: cluster.url, tokens: sessions.map((s) => s.token), connections, maxDurationMs: 60_000 })
    await sleep(1000)

    const killedAt = load.now()
    await victim.kill()
    const detectMs = await timeUntil(async () => (await balancerStats(cluster.url)).find((u) => u.url === victim.url)?.healthy === false, 5000, 10)
    const outAt = killedAt + (detectMs ?? 5000)
    const requestsWhenOut = (await balancerStats(cluster.url)).find((u) => u.url === victim.url)?.requests ?? 0
    await sleep(1500)
    const requestsBeforeRestart = (await balancerStats(cluster.url)).find((u) => u.url === victim.url)?.requests ?? 0

    await victim.start()
    const backAt = load.now()
    const rejoinMs = await timeUntil(() => load.records.some((r) => r.servedBy === victim.id && r.start >= backAt), 10_000, 10)
    await sleep(1000)
    const records = await load.stop()

    const ok = (status: number): boolean => status === 200 || (mode === 'memory' && status === 401)
    const failures = records.filter((r) => !ok(r.status))
    const failedOnceOut = failures.filter((r) => r.start > outAt)
    const checks = [
      { name: 'the balancer marks the killed server down within a second', ok: detectMs !== undefined && detectMs < 1000 },
      { name: 'and sends it nothing until it is back', ok: requestsBeforeRestart === requestsWhenOut },
      { name: 'the restarted server rejoins the rotation', ok: rejoinMs !== undefined }
    ]
    let notes = failures.length === 0 ? 'no request failed' : `failed: ${describe(failures)}`
    let sessionsHeld: number | undefined
    let sessionsLost: number | undefined
    if (mode !== 'memory') {
      checks.push({ name: 'once it is out, no GET fails (retried on another server)', ok: failedOnceOut.length === 0 })
    } else {
      // Memory mode: every session the killed server held died with it.
      const held = sessions.filter((s) => s.servedBy === victim.id)
      let lost = 0
      for (const session of held) {
        const answer = await askUntilServedBy(cluster.url, session.token, victim.id)
        if (answer === 'unknown_session') lost++
      }
      sessionsHeld = held.length
      sessionsLost = lost
      checks.push({ name: 'memory mode loses exactly the sessions the killed server held', ok: lost === held.length && held.length > 0 })
      checks.push({ name: 'and no request gets a 5xx or no answer', ok: failures.length === 0 })
      notes = `lost ${lost} of ${sessions.length} sessions (all ${held.length} that ${victim.id} held); ${notes}`
    }
    return {
      fault: 'kill 1 of 3 app servers (SIGKILL), restart it',
      mode,
      requests: records.length,
      failed: mode === 'memory' ? failures.length : failedOnceOut.length,
      detectMs,
      recoverMs: rejoinMs,
      notes: mode === 'memory' ? notes : `${notes}${failures.length > failedOnceOut.length ? ` (${failures.length - failedOnceOut.length} in flight at the kill)` : ''}`,
      checks,
      figures: {
        detectMs,
        requestsWhileOut: requestsBeforeRestart - requestsWhenOut,
        rejoinMs,
        statuses: countStatuses(records),
        failedOnceOut: failedOnceOut.length,
        failedBeforeOut: failures.length - failedOnceOut.length,
        sessionsHeld,
        sessionsLost
      }
    }
  } finally {
    await cluster.stop()
  }
}

/** GET /feeds with this token until the given server answers (round robin gets there within a few). */
async function askUntilServedBy (url: string, token: string, serverId: string): Promise<string | undefined> {
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`${url}/feeds`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
    const body = await res.json() as { reason?: string }
    if (res.headers.get('x-served-by') === serverId) return res.status === 200 ? 'ok' : body.reason
  }
  return undefined
}

export function describe (records: Array<{ status: number, detail: string | undefined }>): string {
  const counts = new Map<string, number>()
  for (const r of records) {
    const key = `${r.status === 0 ? 'no answer' : r.status}${r.detail !== undefined ? ` ${r.detail}` : ''}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].map(([key, n]) => `${n}× ${key}`).join(', ')
}
