import { startCluster, type Cluster } from '../cluster.ts'
import { killPrimaryUnderLoad, type FailoverReport } from '../lib/redis-failover.ts'
import { FAILOVER_WITHIN_MS } from '../lib/redis-ha.ts'
import { loginOnce, percentile, type FaultResult } from './support.ts'

export interface RedisFailoverOptions {
  /** redis: sessions in Redis, logins in the burst; jwt: JWT_REVOCATION=redis, logouts (revocations) in the burst. */
  mode: 'redis' | 'jwt'
  /** REDIS_WAIT_REPLICAS=1: a login's session (a logout's revocation) is answered only once the replica holds it. */
  wait: boolean
  /** Logins (redis) or logouts (jwt) made while the replica is cut off; default 12. */
  writes?: number
  /** Readers looping GET /feeds through the balancer; default 20. */
  concurrency?: number
  /** One request's bound: far above the 500 ms Redis command timeout, for a busy 2-core machine; default 5000 ms. */
  boundMs?: number
}

/** What redisFailover measured: killPrimaryUnderLoad's report, and a write's cost before the kill. */
export interface RedisFailoverFigures {
  report: FailoverReport
  /** The median of `writes` logins one after another (redis), or logouts (jwt), before the kill. */
  writeP50Ms: number
  boundMs: number
  /** "Requests succeed again within the failover time plus 1 s". */
  recoveryBudgetMs: number
}

// Many logins from one address in a short time: not what the throttle is measured on here.
const THROTTLE_OFF = { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_MAX_FAILURES_PER_ADDRESS: '1000' }

/**
 * The Redis primary of a --redis-ha cluster (a primary, a replica, three Sentinels) SIGKILLed
 * under a read load, the writes of the moment made while the replica was cut off from it
 * (killPrimaryUnderLoad's cutReplica: what asynchronous replication can lose, made certain).
 * Detect: the kill until every Sentinel named the new primary. Recover: the kill until the end
 * of the last read that was not a 200. Failed: a read or write answered anything but a 200/204
 * or a 503 (a 500, a timeout, a dropped connection), and with WAIT a write answered 200/204
 * that the failover lost.
 */
export async function redisFailover (options: RedisFailoverOptions): Promise<FaultResult<RedisFailoverFigures>> {
  const { mode, wait, writes = 12, concurrency = 20, boundMs = 5000 } = options
  const recoveryBudgetMs = FAILOVER_WITHIN_MS + 1000
  let cluster: Cluster | undefined
  try {
    cluster = await startCluster({
      mode,
      servers: 3,
      logLevel: 'warn',
      redisHa: true,
      jwtRevocation: mode === 'jwt',
      serverEnv: { ...THROTTLE_OFF, ...(wait ? { REDIS_WAIT_REPLICAS: '1' } : {}) }
    })
    const { url } = cluster
    const ha = cluster.redisHa
    if (ha === undefined) throw new Error('startCluster({ redisHa: true }) started no primary, replica and Sentinels')
    const { token } = await loginOnce(url)

    // What a write costs with the replica there, one after another: logins, or in jwt mode the
    // logouts of tokens made for it (the burst's logouts are of other tokens, made here too).
    const ms: number[] = []
    const tokens: string[] = []
    for (let i = 0; i < writes; i++) {
      const started = performance.now()
      tokens.push((await loginOnce(url)).token)
      if (mode === 'redis') ms.push(performance.now() - started)
    }
    let logouts: string[] | undefined
    if (mode === 'jwt') {
      for (const session of tokens) {
        const started = performance.now()
        const res = await fetch(`${url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${session}` }, signal: AbortSignal.timeout(boundMs) })
        await res.arrayBuffer()
        if (res.status !== 204) throw new Error(`a logout before the kill answered ${res.status}`)
        ms.push(performance.now() - started)
      }
      logouts = []
      for (let i = 0; i < writes; i++) logouts.push((await loginOnce(url)).token)
    }

    const report = await killPrimaryUnderLoad({ url, ha, token, concurrency, requestTimeoutMs: boundMs, logins: writes, cutReplica: true, logouts })
    return judge(report, { mode, wait, writes, boundMs, recoveryBudgetMs, writeP50Ms: percentile(ms, 50) })
  } finally {
    await cluster?.stop()
  }
}

function judge (report: FailoverReport, run: { mode: 'redis' | 'jwt', wait: boolean, writes: number, boundMs: number, recoveryBudgetMs: number, writeP50Ms: number }): FaultResult<RedisFailoverFigures> {
  const { mode, wait, writes, boundMs, recoveryBudgetMs, writeP50Ms } = run
  const jwt = mode === 'jwt'
  const okWrite = jwt ? '204' : '200'
  const writeStatuses = jwt ? report.revocations.logoutStatuses : report.sessions.loginStatuses
  const answered = jwt ? report.revocations.revoked : report.sessions.created
  const lost = jwt ? report.revocations.lost : report.sessions.lost
  const badReads = Object.entries(report.reads.byStatus).filter(([s]) => s !== '200' && s !== '503').reduce((n, [, c]) => n + c, 0)
  const namedWrite = new RegExp(`^(${okWrite}|503 session_store_(unavailable|not_replicated))$`)
  const badWrites = Object.entries(writeStatuses).filter(([s]) => !namedWrite.test(s)).reduce((n, [, c]) => n + c, 0)
  const what = jwt ? 'logouts' : 'logins'
  const checks = [
    { name: 'every read answered 200 or 503: no 500, no timeout, no dropped connection', ok: badReads === 0 },
    { name: 'every failed read is a named 503 session_store_unavailable', ok: Object.keys(report.errors).every((e) => e === 'session_store_unavailable') },
    { name: `no request took ${boundMs} ms`, ok: report.reads.slowestMs < boundMs },
    { name: `every one of the ${what} answered ${okWrite} or a named 503`, ok: badWrites === 0 },
    { name: 'the Sentinels promoted the replica', ok: report.newPrimaryPort !== undefined && report.newPrimaryPort !== report.killedPort },
    { name: `reads succeed again within the failover time plus 1 s (${recoveryBudgetMs} ms)`, ok: report.recoveredAfterMs <= recoveryBudgetMs }
  ]
  if (wait) checks.push({ name: `with WAIT no ${jwt ? 'logout answered 204' : 'login answered 200'} is lost`, ok: lost === 0 })
  const lostNote = jwt
    ? `${answered} answered 204, ${lost} of those tokens accepted again after the failover`
    : `${answered} answered 200, ${lost} of those sessions lost after the failover`
  return {
    fault: `Redis primary killed (SIGKILL) under load, ${writes} ${what} made while the replica was cut off${wait ? ', WAIT 1' : ''}`,
    mode: jwt ? 'jwt+revocation' : 'redis',
    requests: report.reads.total + writes,
    failed: badReads + badWrites + (wait ? lost : 0),
    detectMs: report.sentinelsAgreedAfterMs,
    recoverMs: report.recoveredAfterMs,
    notes: `reads all 200 again ${report.recoveredAfterMs.toFixed(0)} ms after the kill (Sentinels agreed after ${report.sentinelsAgreedAfterMs?.toFixed(0) ?? 'never'} ms); ` +
      `${report.unavailable} of ${report.reads.total} reads answered 503 (slowest ${report.reads.slowestMs.toFixed(0)} ms); ` +
      `${what}: ${Object.entries(writeStatuses).map(([s, n]) => `${n}× ${s}`).join(', ')}; ${lostNote}; ` +
      `${jwt ? 'logout' : 'login'} p50 before the kill ${writeP50Ms.toFixed(1)} ms`,
    checks,
    figures: { report, writeP50Ms, boundMs, recoveryBudgetMs }
  }
}
