import { DEMO_USERS } from '../../services/users.ts'
import { mean, percentile } from './stats.ts'
import type { Target } from './target.ts'

/**
 * What a refresh costs the issuer (jwt-eddsa): after the measured load, a short, bounded burst
 * of POST /token/refresh through the balancer, each chain presenting the refresh token the last
 * refresh returned (each refresh retires its token, RFC 9700 4.14). A refresh is what the
 * issuer does every ACCESS_TTL_SECONDS for every active client: the price of short access tokens.
 */
export interface RefreshCost {
  /** Refreshes answered 200, and any other answer (none expected). */
  refreshes: number
  failed: number
  /** How many chains ran side by side, and for how long. */
  concurrency: number
  seconds: number
  /** Each refresh as the client saw it through the balancer, ms. */
  latencyMs: { mean: number, p50: number, p99: number }
  /** The issuers' CPU time during the burst / refreshes, µs; null when their processes cannot be seen. */
  issuerCpuUsPerRefresh: number | null
}

export interface RefreshBurst {
  /** Chains side by side (each its own login). */
  concurrency: number
  /** The most refreshes in all, and the most time: whichever comes first ends the burst. */
  maxRefreshes: number
  maxSeconds: number
}

export const REFRESH_BURST: RefreshBurst = { concurrency: 4, maxRefreshes: 1000, maxSeconds: 2 }

async function post (url: string, body: unknown): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  let json: Record<string, unknown> = {}
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    // Not JSON: the status says what went wrong.
  }
  return { status: res.status, json }
}

export async function measureRefreshCost (target: Pick<Target, 'url' | 'issuerCpuSeconds'>, burst: RefreshBurst = REFRESH_BURST): Promise<RefreshCost> {
  const [username, password] = Object.entries(DEMO_USERS)[0] as [string, string]
  // The logins first (each a deliberately slow scrypt): only the refreshes are timed and counted.
  const first = await Promise.all(Array.from({ length: burst.concurrency }, async () => {
    const { status, json } = await post(`${target.url}/login`, { username, password })
    if (status !== 200 || typeof json.refreshToken !== 'string') throw new Error(`a login for the refresh burst got ${status} and no refresh token: is this an issuer with refresh tokens?`)
    return json.refreshToken
  }))
  const latencies: number[] = []
  let failed = 0
  let issued = 0
  const cpuBefore = target.issuerCpuSeconds?.()
  const started = performance.now()
  const deadline = started + burst.maxSeconds * 1000
  await Promise.all(first.map(async (token) => {
    let refreshToken = token
    while (issued < burst.maxRefreshes && performance.now() < deadline) {
      issued++
      const t0 = performance.now()
      const { status, json } = await post(`${target.url}/token/refresh`, { refreshToken })
      if (status !== 200 || typeof json.refreshToken !== 'string') {
        failed++
        return
      }
      latencies.push(performance.now() - t0)
      refreshToken = json.refreshToken
    }
  }))
  const seconds = (performance.now() - started) / 1000
  const cpuAfter = target.issuerCpuSeconds?.()
  const sorted = [...latencies].sort((a, b) => a - b)
  return {
    refreshes: latencies.length,
    failed,
    concurrency: burst.concurrency,
    seconds,
    latencyMs: { mean: mean(sorted), p50: percentile(sorted, 50), p99: percentile(sorted, 99) },
    issuerCpuUsPerRefresh: cpuBefore === undefined || cpuAfter === undefined || latencies.length === 0 ? null : (cpuAfter - cpuBefore) / latencies.length * 1e6
  }
}
