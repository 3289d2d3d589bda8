/**
 * One way to measure "the auth step of this mode", used wherever a cost is shown (the
 * walkthrough's steps, and the tests that hold them to compare's figures).
 *
 * The app servers time the step themselves and say so in every response's
 * `Server-Timing: auth;dur=MS` header (services/authenticate.ts; the header is W3C Server
 * Timing, https://www.w3.org/TR/server-timing/). Times taken on the client would add the
 * balancer, the loopback hops and the route to it.
 *
 * Warm means two things here, both measured on this project's clusters:
 * - A fresh process runs its first requests unoptimised: the walkthrough's first thirty
 *   requests put a JWT's HMAC check at 0.19 ms, well over a thousand later at 0.05 ms. So a
 *   first batch is sent and not counted.
 * - A server that sleeps between requests wakes up with its caches taken by whatever else ran
 *   meanwhile. Requests sent one at a time leave it idle in between, and then the same HMAC
 *   check (5 µs in a loop) takes 35-90 µs, against 80-180 µs for a Redis lookup that is mostly
 *   a wait on a socket: the cold start alone makes a signature look like half a round trip.
 *   So requests are sent several at a time (`inFlight`), as on a server with traffic, which is
 *   what a cost per request is about. The price: a Redis lookup's time then includes its wait
 *   for the event loop to pick the answer up, which grows with the load, as it does for real.
 *
 * The figure is the median of the batch: what a request usually costs, not a mean that one
 * descheduled request drags up. `how` says all of this in a line, to print beside the number.
 */

export interface AuthStepTiming {
  /** The median of the batch's `auth;dur`, in ms. */
  medianMs: number
  /** The batch's 90th percentile, in ms: how wide the spread was. */
  p90Ms: number
  /** Responses timed: those of the batch that carried `auth;dur`. */
  samples: number
  /** Requests sent first and not counted. */
  warmup: number
  /** Requests kept in flight at once through the balancer. */
  inFlight: number
  /** How it was measured, in words to print beside the number. */
  how: string
}

export interface AuthStepTimingOptions {
  /** The balancer (or one server) to send to, e.g. http://127.0.0.1:8080 */
  url: string
  /** Sent as `Authorization: Bearer`. */
  token: string
  /** An authenticated route; default /feeds. */
  path?: string
  /** Requests sent and discarded before the batch; default 100. */
  warmup?: number
  /** Requests whose Server-Timing is the figure; default 200. */
  batch?: number
  /** Requests kept in flight at once; default 12 (4 per server of a cluster of 3). */
  inFlight?: number
  /** Per request; default 5000 ms. */
  timeoutMs?: number
}

export const DEFAULT_WARMUP = 200
export const DEFAULT_BATCH = 200
export const DEFAULT_IN_FLIGHT = 12

const AUTH_DURATION = /(?:^|,)\s*auth;dur=([0-9.]+)/

/** The `auth;dur` of a Server-Timing header value, in ms, or null when it has none. */
export function authDurationMs (serverTiming: string | null): number | null {
  const match = AUTH_DURATION.exec(serverTiming ?? '')
  return match?.[1] === undefined ? null : Number(match[1])
}

/** The p-th percentile (nearest rank) of values sorted ascending. */
function nearestRank (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))] as number
}

function median (sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * Sends `warmup` then `batch` requests with this credential, `inFlight` at a time, and returns
 * the median of the servers' own `auth;dur` over the batch. Refused requests count too: the
 * auth step ran on them (a memory session looked up on a server that does not hold it is the
 * same Map lookup). Throws when no answer carried the header (a server that does not time the
 * step, or a route that skips it), rather than return a number that measures nothing.
 */
export async function measureAuthStep (options: AuthStepTimingOptions): Promise<AuthStepTiming> {
  const { url, token, path = '/feeds', warmup = DEFAULT_WARMUP, batch = DEFAULT_BATCH, inFlight = DEFAULT_IN_FLIGHT, timeoutMs = 5000 } = options
  if (!Number.isInteger(warmup) || warmup < 0) throw new RangeError(`warmup must be a whole number of requests (got ${warmup})`)
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be at least 1 request (got ${batch})`)
  if (!Number.isInteger(inFlight) || inFlight < 1) throw new RangeError(`inFlight must be at least 1 request (got ${inFlight})`)
  const target = new URL(path, url)
  const send = async (): Promise<Response> => {
    const res = await fetch(target, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) })
    await res.arrayBuffer()
    return res
  }
  await inParallel(warmup, inFlight, send)
  const durations: number[] = []
  const statuses = new Map<number, number>()
  await inParallel(batch, inFlight, async () => {
    const res = await send()
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    const ms = authDurationMs(res.headers.get('server-timing'))
    if (ms !== null) durations.push(ms)
  })
  if (durations.length === 0) {
    const seen = [...statuses].map(([status, count]) => `${count} × ${status}`).join(', ')
    throw new Error(`no answer from ${target.href} carried Server-Timing auth;dur (got ${seen}): nothing to measure`)
  }
  const sorted = durations.sort((a, b) => a - b)
  return {
    medianMs: median(sorted),
    p90Ms: nearestRank(sorted, 90),
    samples: sorted.length,
    warmup,
    inFlight,
    how: `median of ${sorted.length} warm requests, ${inFlight} at a time after ${warmup} not counted, from the servers' Server-Timing`
  }
}

/** Runs `task` `count` times with at most `width` running at once. */
async function inParallel (count: number, width: number, task: () => Promise<unknown>): Promise<void> {
  let started = 0
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => {
    while (started < count) {
      started++
      await task()
    }
  }))
}

/** A duration in ms with the digits it deserves: Server-Timing has µs resolution. */
export function formatAuthMs (ms: number): string {
  return ms < 0.1 ? ms.toFixed(3) : ms < 10 ? ms.toFixed(2) : ms.toFixed(1)
}
