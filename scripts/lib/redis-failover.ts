import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { freePort } from './ports.ts'
import type { RedisHa } from './redis-ha.ts'

/**
 * The primary of a --redis-ha cluster killed (SIGKILL) under a steady, bounded load of reads
 * through the balancer, with a burst of logins in flight at that moment: what clients saw, how
 * long until reads succeeded again, and which of the sessions they were given survived the
 * failover. Shared by the cluster test and the faults scenario; it judges nothing itself.
 */
export interface FailoverOptions {
  /** The balancer. */
  url: string
  ha: RedisHa
  /** A valid session to read with (made before the measurement). */
  token: string
  /** Readers looping GET /feeds; default 20. */
  concurrency?: number
  /** One request's bound: longer is counted as 'timeout'; default 2000 ms. */
  requestTimeoutMs?: number
  /** Logins fired just before the kill (the kill comes when half have answered); default 30. */
  logins?: number
  /** The load stops this long after the last failed read, once the Sentinels agree; default 1500 ms. */
  steadyMs?: number
  /** ... and in any case this long after the kill; default 12000 ms. */
  maxAfterKillMs?: number
  /**
   * The replica cut off from the primary while the logins are made (told to replicate from a
   * closed port: a partition, as the replica sees it), the primary killed once they have all
   * answered, the replica pointed back at it at once (the Sentinels then promote it without
   * them). What asynchronous replication loses, made certain: without WAIT those logins were
   * answered 200 and are gone; with WAIT they were refused. (Freezing the replica is not enough:
   * the kernel keeps buffering the stream for it, and it reads it all when it is thawed.)
   */
  cutReplica?: boolean
  /**
   * jwt mode with JWT_REVOCATION=redis: instead of the logins, these tokens are logged out
   * (revoked) in the burst, and `revocations` says how many were answered 204 and how many of
   * those tokens are accepted again after the failover (the revocation was lost).
   */
  logouts?: string[]
}

export interface Outcome { status: number | 'timeout' | 'error', startMs: number, endMs: number, error?: string | undefined }

export interface FailoverReport {
  killedPort: number
  newPrimaryPort: number | undefined
  /** From the kill until every Sentinel named the new primary. */
  sentinelsAgreedAfterMs: number | undefined
  reads: { total: number, byStatus: Record<string, number>, slowestMs: number, afterKill: number }
  /** From the kill to the end of the last read that was not a 200 (0: none failed). */
  recoveredAfterMs: number
  /** Reads that got a 503 (any reason), before and after the kill. */
  unavailable: number
  /** The answers' `error` names of the failed reads, counted. */
  errors: Record<string, number>
  /** Logins in flight at the kill: how many answered 200 (the client holds a session), and of those how many were gone after the failover. */
  sessions: { attempted: number, created: number, lost: number, loginStatuses: Record<string, number> }
  /** With `logouts`: how many were answered 204 (revoked), and of those how many tokens read 200 again after the failover. */
  revocations: { attempted: number, revoked: number, lost: number, logoutStatuses: Record<string, number> }
}

async function timed (url: string, init: RequestInit, timeoutMs: number, t0: number): Promise<Outcome & { body?: Record<string, unknown> }> {
  const startMs = performance.now() - t0
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) })
    const text = await res.text()
    let body: Record<string, unknown> = {}
    try { body = JSON.parse(text) as Record<string, unknown> } catch {}
    return { status: res.status, startMs, endMs: performance.now() - t0, body, error: typeof body.error === 'string' ? body.error : undefined }
  } catch (err) {
    const timeout = (err as Error).name === 'TimeoutError'
    return { status: timeout ? 'timeout' : 'error', startMs, endMs: performance.now() - t0, error: (err as Error).message }
  }
}

const count = (values: Array<string | number>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1
  return out
}

export async function killPrimaryUnderLoad (options: FailoverOptions): Promise<FailoverReport> {
  const { url, ha, token, concurrency = 20, requestTimeoutMs = 2000, steadyMs = 1500, maxAfterKillMs = 12_000, cutReplica = false, logouts } = options
  // The burst: logins, or with `logouts` the logouts of those tokens.
  const logins = logouts === undefined ? options.logins ?? 30 : 0
  const burst = logouts?.length ?? logins
  const t0 = performance.now()
  const now = (): number => performance.now() - t0
  const reads: Outcome[] = []
  let killAt: number | undefined
  const load = { stopped: false }
  const reader = async (): Promise<void> => {
    while (!load.stopped) {
      const answer = await timed(`${url}/feeds`, { headers: { authorization: `Bearer ${token}` } }, requestTimeoutMs, t0)
      reads.push(answer)
      // A client told to come back (503, Retry-After) pauses a little: the load stays light.
      if (answer.status !== 200) await sleep(50)
    }
  }
  const readers = Array.from({ length: concurrency }, reader)
  // Half a second of steady load first.
  await sleep(500)

  const killedPort = (await ha.primaryPort()) ?? ha.primary.port
  const victim = [...ha.byName.values()].find((p) => p.port === killedPort) ?? ha.primary
  const replica = [...ha.byName.values()].find((p) => p.name.startsWith('redis-') && p !== victim && p.running)
  if (cutReplica && replica !== undefined) await replicaOf(replica.port, await closedPort())
  let answered = 0
  let killing: Promise<void> | undefined
  const burstAnswers = await Promise.all(Array.from({ length: burst }, async (_, i) => {
    const answer = logouts === undefined
      ? await timed(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: ['alice', 'bob', 'carol'][i % 3], password: ['wonderland', 'builder', 'lighthouse'][i % 3] }) }, requestTimeoutMs, t0)
      : await timed(`${url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${logouts[i] ?? ''}` } }, requestTimeoutMs, t0)
    // The kill lands while the other half are still in flight.
    if (++answered === Math.ceil(burst / 2) && !cutReplica) {
      killAt = now()
      killing = victim.kill()
    }
    return answer
  }))
  if (killAt === undefined) {
    killAt = now()
    killing = victim.kill()
  }
  await killing
  if (cutReplica && replica !== undefined) await replicaOf(replica.port, killedPort)
  const kill = killAt
  let sentinelsAgreedAfterMs: number | undefined
  const agreed = ha.waitForNewPrimary(killedPort, maxAfterKillMs).then(() => { sentinelsAgreedAfterMs = now() - kill }, () => {})

  // Until the Sentinels agree and reads have been all 200 for steadyMs, or the cap.
  while (now() - kill < maxAfterKillMs) {
    await sleep(100)
    const lastFailure = Math.max(kill, ...reads.filter((r) => r.status !== 200).map((r) => r.endMs))
    if (sentinelsAgreedAfterMs !== undefined && now() - lastFailure > steadyMs) break
  }
  load.stopped = true
  await Promise.all(readers)
  await agreed

  const readAfter = async (session: string): Promise<number | 'timeout' | 'error'> => {
    // A 503 here is the check's problem, not the session's: asked again, a few times.
    let answer = await timed(`${url}/feeds`, { headers: { authorization: `Bearer ${session}` } }, requestTimeoutMs, t0)
    for (let i = 0; i < 10 && answer.status === 503; i++) {
      await sleep(200)
      answer = await timed(`${url}/feeds`, { headers: { authorization: `Bearer ${session}` } }, requestTimeoutMs, t0)
    }
    return answer.status
  }
  const loginAnswers = logouts === undefined ? burstAnswers : []
  const created = loginAnswers.filter((a) => a.status === 200 && typeof a.body?.token === 'string').map((a) => a.body?.token as string)
  let lost = 0
  for (const session of created) if (await readAfter(session) !== 200) lost++
  // A revoked token that reads 200 again: its revocation did not survive the failover.
  const revoked = (logouts ?? []).filter((_, i) => burstAnswers[i]?.status === 204)
  let revocationsLost = 0
  for (const session of revoked) if (await readAfter(session) === 200) revocationsLost++
  const named = (a: Outcome): string => a.error === undefined ? String(a.status) : `${a.status} ${a.error}`

  const failed = reads.filter((r) => r.status !== 200)
  const lastFailureEnd = Math.max(kill, ...failed.map((r) => r.endMs))
  return {
    killedPort,
    newPrimaryPort: await ha.primaryPort(),
    sentinelsAgreedAfterMs,
    reads: { total: reads.length, byStatus: count(reads.map((r) => r.status)), slowestMs: Math.max(0, ...reads.map((r) => r.endMs - r.startMs)), afterKill: reads.filter((r) => r.startMs >= kill).length },
    recoveredAfterMs: failed.length === 0 ? 0 : lastFailureEnd - kill,
    unavailable: reads.filter((r) => r.status === 503).length,
    errors: count(failed.map((r) => r.error ?? String(r.status))),
    sessions: { attempted: logins, created: created.length, lost, loginStatuses: count(loginAnswers.map(named)) },
    revocations: { attempted: logouts?.length ?? 0, revoked: revoked.length, lost: revocationsLost, logoutStatuses: count(logouts === undefined ? [] : burstAnswers.map(named)) }
  }
}

/** A port nothing listens on (free now; nothing here binds it). */
async function closedPort (): Promise<number> {
  return await freePort()
}

/** REPLICAOF 127.0.0.1 <port> on the Redis at `at`. */
async function replicaOf (at: number, port: number): Promise<void> {
  const r = new Redis({ port: at, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000, retryStrategy: () => null })
  r.on('error', () => {})
  try {
    await r.connect()
    await r.call('REPLICAOF', '127.0.0.1', String(port))
  } finally {
    r.disconnect()
  }
}
