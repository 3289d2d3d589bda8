import type { LoadGenerator } from './load-client.ts'
import type { LoadJob, Tick } from './load-generator.ts'

/**
 * Warming up until the cluster is in its steady state, not for a fixed time. A fresh Node process
 * runs its code in the interpreter first and compiles the hot functions (Maglev, then TurboFan)
 * as they run: in a fresh cluster under load the CPU each request costs the balancer and the app
 * servers falls by half over the first seconds, and keeps falling for about ten (more for jwt,
 * whose servers run more code). Measured during that time, the first round of every mode came out
 * 15-35% slower than the third (issue 17). So the warm-up goes on, one-second window after
 * window, until neither the rate nor the CPU per request moves any more, or until the cap.
 */

/** One window of load: its rate, and what each request cost our processes in CPU. */
export interface LoadWindow {
  seconds: number
  requests: number
  rps: number
  /** CPU of the balancer, the app servers and the load generator together, per request of this window, µs; null when they cannot all be seen (--url). */
  cpuUsPerRequest: number | null
}

export interface Warmup {
  /** How long it took, load only. */
  seconds: number
  /** --warmup: the most it may take. */
  capSeconds: number
  /** It ended because the rule below held; false when the cap ended it (or there was none). */
  steady: boolean
  windows: LoadWindow[]
}

/**
 * Steady: over the last four full one-second windows, the mean of the last two is within 3% of
 * the mean of the two before, in req/s and in CPU per request. A warming process shows as a
 * trend, which this compares across; the wobble of single windows partly averages out in pairs.
 * (Two consecutive windows alone agree by chance in the middle of a climb of a few % a second.)
 */
export const STEADY_RULE = { windows: 4, tolerance: 0.03 } as const
export const STEADY_RULE_TEXT = 'the last two one-second windows within 3% of the two before, in req/s and in CPU per request'

// A window cut short by the end of the load is not a second of it.
const FULL_WINDOW_SECONDS = 0.9

export function fullWindows (windows: LoadWindow[]): LoadWindow[] {
  return windows.filter((w) => w.seconds >= FULL_WINDOW_SECONDS)
}

/** How far apart the two halves of the last four full windows are, as a share of the whole, per measure; null for too few windows or a measure that was not seen. */
export function steadyChange (windows: LoadWindow[]): { rps: number | null, cpuUsPerRequest: number | null } {
  const last = fullWindows(windows).slice(-STEADY_RULE.windows)
  if (last.length < STEADY_RULE.windows) return { rps: null, cpuUsPerRequest: null }
  const change = (pick: (w: LoadWindow) => number | null): number | null => {
    const values = last.map(pick)
    if (values.some((v) => v === null || !Number.isFinite(v))) return null
    const [a, b, c, d] = values as [number, number, number, number]
    const whole = (a + b + c + d) / 4
    return whole === 0 ? null : ((c + d) / 2 - (a + b) / 2) / whole
  }
  return { rps: change((w) => w.rps), cpuUsPerRequest: change((w) => w.cpuUsPerRequest) }
}

export function isSteady (windows: LoadWindow[]): boolean {
  const { rps, cpuUsPerRequest } = steadyChange(windows)
  if (rps === null || Math.abs(rps) > STEADY_RULE.tolerance) return false
  // Where our processes' CPU cannot be seen (a cluster at --url), the rate alone decides.
  const cpuSeen = windows.every((w) => w.cpuUsPerRequest !== null)
  return !cpuSeen || (cpuUsPerRequest !== null && Math.abs(cpuUsPerRequest) <= STEADY_RULE.tolerance)
}

/** Turns each tick of a load into a window, reading our processes' CPU as it comes. */
export function windowRecorder (cpuSeconds: () => number | undefined): (tick: Tick) => LoadWindow {
  let before = cpuSeconds()
  return (tick) => {
    const now = cpuSeconds()
    const cpu = before !== undefined && now !== undefined && tick.requests > 0 ? (now - before) / tick.requests * 1e6 : null
    before = now
    return { seconds: tick.seconds, requests: tick.requests, rps: tick.seconds > 0 ? tick.requests / tick.seconds : 0, cpuUsPerRequest: cpu }
  }
}

/**
 * Load until steady (isSteady) or until capSeconds, whichever comes first; with a cap of 0, none.
 * The load generator's connections are its own per job, as in the measured load that follows.
 */
export async function warmUp (
  job: Omit<LoadJob, 'durationSeconds'>,
  capSeconds: number,
  loadGenerator: LoadGenerator,
  cpuSeconds: () => number | undefined,
  onWindow: (window: LoadWindow, elapsedSeconds: number) => void = () => {}
): Promise<Warmup> {
  if (capSeconds <= 0) return { seconds: 0, capSeconds, steady: false, windows: [] }
  let elapsed = 0
  const { seconds, windows, stopped } = await loadUntil(job, capSeconds, loadGenerator, cpuSeconds, (window, tick, all) => {
    elapsed += tick.seconds
    onWindow(window, elapsed)
    return isSteady(all)
  })
  return { seconds, capSeconds, steady: stopped, windows }
}

/**
 * The load of a warm-up or a wear-in: one-second windows, each with our processes' CPU per
 * request, until `enough` first says so after a window (the load is stopped there) or until the cap.
 * Every window is seen, a late one after the stop too.
 */
async function loadUntil (
  job: Omit<LoadJob, 'durationSeconds'>,
  capSeconds: number,
  loadGenerator: LoadGenerator,
  cpuSeconds: () => number | undefined,
  enough: (window: LoadWindow, tick: Tick, windows: LoadWindow[]) => boolean
): Promise<{ seconds: number, requests: number, windows: LoadWindow[], stopped: boolean }> {
  const windows: LoadWindow[] = []
  const record = windowRecorder(cpuSeconds)
  const stop = new AbortController()
  const load = await loadGenerator.run({ ...job, durationSeconds: capSeconds }, (tick) => {
    const window = record(tick)
    windows.push(window)
    if (enough(window, tick, windows) && !stop.signal.aborted) stop.abort()
  }, stop.signal)
  return { seconds: load.durationSeconds, requests: load.requests, windows, stopped: stop.signal.aborted }
}

/**
 * Wearing a fresh cluster in, once, before its first round. V8 tiers a function up (Maglev, then
 * TurboFan) after it has run a number of times, not after a number of seconds: the slower the
 * machine, the longer the same JIT warming takes. On a 2-core machine doing 2,000 to 5,000 req/s,
 * the app servers' CPU per request was still falling after a warm-up of 8 s, by 1.2 to 1.9 times
 * from the first round to the third: every mode's first round was its slowest, and the rounds
 * climbed (issue 17). And the steady rule cannot see a slow climb through a noisy machine's
 * windows. So before the rounds each cluster serves a number of requests per app server, however
 * long that takes up to a cap; each round's warm-up (warmUp) then only brings it back from idle.
 */
export const WEAR_IN_CAP_SECONDS = 30

export interface WearIn {
  /** Requests asked for: --wear-in per app server, times the servers. */
  target: number
  /** Requests the load generator had answered when it ended. */
  requests: number
  seconds: number
  /** false: the cap ended it first. */
  reached: boolean
  /** The last full window's rate and CPU per request: where the cluster stood when the rounds began. */
  last: LoadWindow | null
}

/** Load until `requests` have been answered or `capSeconds` have passed; with 0 requests, none. */
export async function wearIn (
  job: Omit<LoadJob, 'durationSeconds'>,
  requests: number,
  capSeconds: number,
  loadGenerator: LoadGenerator,
  cpuSeconds: () => number | undefined,
  onWindow: (window: LoadWindow, answered: number) => void = () => {}
): Promise<WearIn> {
  if (requests <= 0 || capSeconds <= 0) return { target: 0, requests: 0, seconds: 0, reached: false, last: null }
  let answered = 0
  const load = await loadUntil(job, capSeconds, loadGenerator, cpuSeconds, (window, tick) => {
    answered = tick.totalRequests
    onWindow(window, answered)
    return answered >= requests
  })
  const served = Math.max(answered, load.requests)
  return { target: requests, requests: served, seconds: load.seconds, reached: served >= requests, last: fullWindows(load.windows).at(-1) ?? null }
}
