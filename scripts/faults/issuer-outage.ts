import { startCluster, type Cluster } from '../cluster.ts'
import { startIssuerCalls, type IssuerCall } from './issuer-calls.ts'
import { sleep, startLoad, timeUntil } from './load.ts'
import { countStatuses, getJson, loginMany, percentile, type FaultResult } from './support.ts'

export interface IssuerOutageOptions {
  /**
   * kill: SIGKILL (a crash), then the issuer started again on its port with the same keys.
   * freeze: SIGSTOP, then SIGCONT: the JWKS endpoint hangs with its connections open, the app
   * servers' fetches time out.
   */
  how: 'kill' | 'freeze'
  outageMs?: number
  sessions?: number
  connections?: number
}

/** What issuerOutage measured. */
export interface IssuerOutageFigures {
  how: 'kill' | 'freeze'
  outageMs: number
  /** The access tokens' life: reads may go on this long without the issuer. */
  accessTtlSeconds: number
  /** Reads (GET /feeds with tokens from before), by status: ended before the fault, overlapping it, begun after it ended. */
  reads: { before: Record<number, number>, during: Record<number, number>, after: Record<number, number> }
  slowestReadDuringMs: number
  /** Logins and refreshes, by status: overlapping the fault, and begun after it ended. */
  issuerCalls: { during: Record<number, number>, after: Record<number, number> }
  /** From the fault to the end of the first login or refresh refused after it (undefined: none). */
  detectMs: number | undefined
  /** From the fault to the balancer's stats showing the issuer down (undefined: not during the fault). */
  markedDownMs: number | undefined
  /** The slowest login or refresh overlapping the fault, and the slowest of those begun once the balancer had marked the issuer down. */
  slowestCallDuringMs: number
  slowestCallSettledMs: number
  /** How many logins and refreshes began once the balancer had marked the issuer down, and their statuses. */
  settledCalls: number
  settledStatuses: Record<number, number>
  /** From the issuer answering again to the first login or refresh that succeeds (undefined: none within 10 s). */
  recoverMs: number | undefined
  /** Refresh tokens from before the fault, tried after it: how many still work (Redis kept them). */
  refreshTokensKept: number
  refreshTokens: number
  /** The app servers' failed JWKS fetches during the fault (jwks_fetches_total{result="failed"}). */
  jwksFetchesFailed: number
  /** Each app server's /health jwks near the fault's end, and after it. */
  jwksDuring: unknown[]
  jwksAfter: unknown[]
  /** A token with a kid no server holds, sent during the fault: its status and how long it took. */
  unknownKid: { status: number, ms: number }
  allRunning: boolean
}

const ACCESS_TTL_SECONDS = 60
const JWKS_REFRESH_SECONDS = 1

/** Counts a metric over every app server's /metrics (Prometheus text), summed over samples whose labels include `match`. */
async function serversCounter (cluster: Cluster, name: string, match: string): Promise<number> {
  const texts = await Promise.all(cluster.servers.map(async (s) => await (await fetch(`${s.url}/metrics`, { signal: AbortSignal.timeout(2000) })).text()))
  return texts.flatMap((t) => t.split('\n')).filter((l) => l.startsWith(`${name}{`) && l.includes(match)).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0)
}

async function loginWithRefresh (url: string): Promise<string> {
  const res = await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob', password: 'builder' }), signal: AbortSignal.timeout(5000) })
  return ((await res.json()) as { refreshToken: string }).refreshToken
}

/** The issuer killed or frozen under load: reads go on from the cached keys; logins and refreshes answer at once. */
export async function issuerOutage (options: IssuerOutageOptions): Promise<FaultResult<IssuerOutageFigures>> {
  const { how, outageMs = how === 'freeze' ? 5000 : 3000, sessions: sessionCount = 12, connections = 6 } = options
  let cluster: Cluster | undefined
  try {
    cluster = await startCluster({
      mode: 'jwt',
      signing: 'eddsa',
      servers: 3,
      logLevel: 'warn',
      // The login throttle counts an attempt before the password is checked, so a burst of right
      // passwords for one account (the logins a frozen issuer held, all let go at once) can meet
      // its limit and get 429s: this fault is about the issuer, so the budget is out of its way.
      issuerEnv: { ACCESS_TTL_SECONDS: String(ACCESS_TTL_SECONDS), LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_MAX_FAILURES_PER_ADDRESS: '1000' },
      // Fetched every second: the fault spans several fetches, each failing.
      serverEnv: { JWKS_REFRESH_SECONDS: String(JWKS_REFRESH_SECONDS) }
    })
    const c = cluster
    const issuer = c.issuers[0]
    if (issuer === undefined) throw new Error('an eddsa cluster has an issuer')
    const sessions = await loginMany(c.url, sessionCount)
    const refreshTokens = await Promise.all([0, 1, 2].map(async () => await loginWithRefresh(c.url)))
    const load = startLoad({ url: c.url, tokens: sessions.map((s) => s.token), connections, maxDurationMs: 60_000 })
    const caller = startIssuerCalls({ url: c.url, now: load.now })
    await sleep(1000)

    const failedBefore = await serversCounter(c, 'jwks_fetches_total', 'result="failed"')
    const downAt = load.now()
    if (how === 'kill') await issuer.kill()
    else issuer.signal('SIGSTOP')
    const refused = (r: IssuerCall): boolean => r.status !== 200 && r.end >= downAt
    await timeUntil(() => caller.calls.some(refused), 5000, 5)
    // When the balancer takes the issuer out of its pool: at once for a refused connection (kill),
    // after its health checks time out for a frozen one (every 1000 ms, 500 ms each, two failures).
    const issuerHealthy = async (): Promise<boolean> => ((await getJson(`${c.url}/_balancer/stats`)).body as { pools?: Record<string, { upstreams: Array<{ healthy: boolean }> }> }).pools?.issuer?.upstreams[0]?.healthy !== false
    const markedDownWait = await timeUntil(async () => !await issuerHealthy(), Math.max(0, outageMs - (load.now() - downAt)), 20)
    const markedDownMs = markedDownWait === undefined ? undefined : load.now() - downAt
    // A kid no server holds, while the JWKS cannot be fetched: answered from the cache, at once or after one timed-out fetch.
    const forged = `${Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: 'no-such-key' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'alice' })).toString('base64url')}.${Buffer.alloc(64).toString('base64url')}`
    const kidStarted = performance.now()
    const unknownKidStatus = (await fetch(`${c.url}/feeds`, { headers: { authorization: `Bearer ${forged}` }, signal: AbortSignal.timeout(5000) }).catch(() => ({ status: 0 }))).status
    const unknownKid = { status: unknownKidStatus, ms: performance.now() - kidStarted }
    await sleep(Math.max(0, outageMs - (load.now() - downAt) - 300))
    const jwksDuring = await Promise.all(c.servers.map(async (s) => (await getJson(`${s.url}/health`)).body.jwks))
    await sleep(Math.max(0, outageMs - (load.now() - downAt)))
    const jwksFetchesFailed = await serversCounter(c, 'jwks_fetches_total', 'result="failed"') - failedBefore
    if (how === 'kill') await issuer.start()
    else issuer.signal('SIGCONT')
    const backAt = load.now()
    const back = async (): Promise<boolean> => caller.calls.some((r) => r.start >= backAt && r.status === 200)
    await timeUntil(back, 10_000, 10)
    await sleep(1500)
    const [records, calls] = await Promise.all([load.stop(), caller.stop()])

    const readsDuring = records.filter((r) => r.end > downAt && r.start < backAt)
    const callsDuring = calls.filter((r) => r.end > downAt && r.start < backAt)
    const callsAfter = calls.filter((r) => r.start >= backAt)
    const firstRefused = calls.filter(refused).sort((a, b) => a.end - b.end)[0]
    const firstBack = callsAfter.filter((r) => r.status === 200).sort((a, b) => a.end - b.end)[0]
    const settled = markedDownMs === undefined ? [] : callsDuring.filter((r) => r.start >= downAt + markedDownMs)
    const kept = await Promise.all(refreshTokens.map(async (token) => (await fetch(`${c.url}/token/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: token }), signal: AbortSignal.timeout(5000) })).status === 200))
    const jwksAfter = await Promise.all(c.servers.map(async (s) => (await getJson(`${s.url}/health`)).body.jwks))
    const figures: IssuerOutageFigures = {
      how,
      outageMs,
      accessTtlSeconds: ACCESS_TTL_SECONDS,
      reads: {
        before: countStatuses(records.filter((r) => r.end <= downAt)),
        during: countStatuses(readsDuring),
        after: countStatuses(records.filter((r) => r.start >= backAt))
      },
      slowestReadDuringMs: Math.max(0, ...readsDuring.map((r) => r.end - r.start)),
      issuerCalls: { during: countStatuses(callsDuring), after: countStatuses(callsAfter) },
      detectMs: firstRefused === undefined ? undefined : firstRefused.end - downAt,
      markedDownMs,
      slowestCallDuringMs: Math.max(0, ...callsDuring.map((r) => r.end - r.start)),
      slowestCallSettledMs: Math.max(0, ...settled.map((r) => r.end - r.start)),
      settledCalls: settled.length,
      settledStatuses: countStatuses(settled),
      recoverMs: firstBack === undefined ? undefined : Math.max(0, firstBack.end - backAt),
      refreshTokensKept: kept.filter(Boolean).length,
      refreshTokens: kept.length,
      jwksFetchesFailed,
      jwksDuring,
      jwksAfter,
      unknownKid,
      allRunning: [c.balancer, ...c.servers, ...c.issuers].every((p) => p.running)
    }
    return report(figures, records.length + calls.length, readsDuring.map((r) => r.end - r.start))
  } finally {
    await cluster?.stop()
  }
}

function report (f: IssuerOutageFigures, requests: number, readTimes: number[]): FaultResult<IssuerOutageFigures> {
  const readsBad = Object.entries(f.reads.during).filter(([s]) => s !== '200').reduce((n, [, k]) => n + k, 0) +
    Object.entries(f.reads.after).filter(([s]) => s !== '200').reduce((n, [, k]) => n + k, 0)
  const callsDuring = Object.entries(f.issuerCalls.during).map(([s, k]) => `${k}×${s}`).join(', ')
  const kill = f.how === 'kill'
  const name = kill ? 'the issuer' : 'the frozen issuer'
  return {
    fault: kill ? `the issuer killed (SIGKILL) for ${f.outageMs / 1000} s, then started again` : `the issuer frozen (SIGSTOP) for ${f.outageMs / 1000} s: its JWKS hangs`,
    mode: 'jwt-eddsa',
    requests,
    failed: readsBad,
    detectMs: f.detectMs,
    recoverMs: f.recoverMs,
    notes: `reads while away: ${f.reads.during[200] ?? 0} × 200 of ${Object.values(f.reads.during).reduce((a, b) => a + b, 0)} (p99 ${Math.round(percentile(readTimes, 99))} ms); logins and refreshes while away: ${callsDuring} (slowest ${Math.round(f.slowestCallDuringMs)} ms; the balancer marked it down after ${f.markedDownMs === undefined ? '-' : `${Math.round(f.markedDownMs)} ms`}, and from then on the slowest took ${Math.round(f.slowestCallSettledMs)} ms); ${f.jwksFetchesFailed} JWKS fetches failed; an unknown kid: ${f.unknownKid.status} in ${Math.round(f.unknownKid.ms)} ms; ${f.refreshTokensKept} of ${f.refreshTokens} refresh tokens kept`,
    checks: [
      { name: `every read with a live access token succeeds while ${name} is away, and after`, ok: readsBad === 0 && (f.reads.during[200] ?? 0) > 0 },
      ...(kill
        ? [{ name: 'logins and refreshes are refused within a second of the issuer going away', ok: f.detectMs !== undefined && f.detectMs < 1000 }, { name: 'each answered within a second: a 503 (a 502 for those sent before the balancer marked it down)', ok: Object.keys(f.issuerCalls.during).every((s) => ['200', '502', '503'].includes(s)) && (f.issuerCalls.during[503] ?? 0) > 0 && f.slowestCallDuringMs < 1000 }]
        : [{ name: 'the balancer marks the frozen issuer down within three seconds (its health checks)', ok: f.markedDownMs !== undefined && f.markedDownMs < 3000 }, { name: 'from then on, logins and refreshes are a 503 within a second', ok: f.settledCalls > 0 && Object.keys(f.settledStatuses).every((s) => s === '503') && f.slowestCallSettledMs < 1000 }]),
      // Frozen, it was taken out of the pool, so it is back at the balancer's next passing health check.
      { name: `logins and refreshes work again within ${kill ? 'two' : 'three'} seconds of the issuer returning`, ok: f.recoverMs !== undefined && f.recoverMs < (kill ? 2000 : 3000) },
      { name: 'the app servers kept their keys: their JWKS fetches failed and a token with an unknown kid is a 401 within 1.5 s', ok: f.jwksFetchesFailed > 0 && f.unknownKid.status === 401 && f.unknownKid.ms < 1500 },
      { name: 'refresh tokens from before still work (Redis kept them)', ok: f.refreshTokensKept === f.refreshTokens },
      { name: 'no process died; every app server fetches the JWKS again', ok: f.allRunning && f.jwksAfter.every((s) => s === 'up') }
    ],
    figures: f
  }
}
