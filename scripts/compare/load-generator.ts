import autocannon from 'autocannon'
import { mean, percentile, Samples } from './stats.ts'

/** One measured load: every connection sends its own credential, as a real client would. */
export interface LoadJob {
  /** Where to send it: the balancer, e.g. http://127.0.0.1:8080 */
  url: string
  /** The authenticated route, e.g. /feeds */
  path: string
  /** One credential per connection: connection i sends tokens[i % tokens.length]. */
  tokens: string[]
  /** A label per token (groups[i] for tokens[i]), e.g. the kid a JWT was signed with: the result then counts each group apart. */
  groups?: string[]
  connections: number
  durationSeconds: number
}

export interface LoadResult {
  /** Responses received (of any status). */
  requests: number
  /** Wall time from the first request to the last response. */
  durationSeconds: number
  /** Responses by HTTP status, as the client saw them. */
  statusCounts: Record<string, number>
  /** Requests that got no response: connection errors and timeouts. */
  errors: number
  timeouts: number
  /** Client-side latency of every response, 2xx and 401 alike, with microsecond resolution. */
  latencyMs: { p50: number, p90: number, p99: number, mean: number, max: number }
  /** What the servers said the auth step took, from each response's Server-Timing header. */
  serverTimingAuthMs: { count: number, mean: number, p50: number, p99: number } | null
  /** CPU time the load generator itself used during the run (its process, all threads). */
  cpuSeconds: number
  /** Per label of job.groups: the connections with such a token, their responses by status, and their Server-Timing; null without groups. */
  byGroup: Record<string, GroupLoad> | null
  /** Responses in each one-second window from the start, the last one shorter (its own seconds): how the rate moved during the load. */
  windows: Array<{ seconds: number, requests: number }>
  /** Ended by the caller (a warm-up that reached steady state) before its duration. */
  stoppedEarly: boolean
}

export interface GroupLoad {
  connections: number
  statusCounts: Record<string, number>
  serverTimingAuthMs: { count: number, mean: number, p50: number, p99: number } | null
}

/** One window of the load: `requests` responses in `seconds` (1, or less for the last one). */
export interface Tick { second: number, requests: number, seconds: number, totalRequests: number }

const WINDOW_MS = 1000
// autocannon looks at its stop flag, and its duration, once per sample interval (1 s by default):
// a stop would then take up to a second of extra load. Its per-interval request histogram is not used here.
const SAMPLE_INTERVAL_MS = 100

const SERVER_TIMING_AUTH = /(?:^|,)\s*auth;dur=([0-9.]+)/

/**
 * Runs autocannon against one URL. It runs in the process that calls it, so call it only in
 * a process of its own (load-generator-process.ts), never in a server's. autocannon records
 * latency in whole milliseconds and only for 2xx; here every response's latency is kept as a
 * float, because a 401 is an answer too and loopback latencies are often below a millisecond.
 */
export async function runLoad (job: LoadJob, onTick: (tick: Tick) => void = () => {}, signal?: AbortSignal): Promise<LoadResult> {
  if (job.tokens.length === 0) throw new Error('runLoad needs at least one token')
  const latencies = new Samples()
  const authMs = new Samples()
  const groups = new Map<string, { connections: number, statusCounts: Record<string, number>, authMs: Samples }>()
  let next = 0
  let total = 0
  const windows: Array<{ seconds: number, requests: number }> = []
  let inWindow = 0
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  let lastResponse = started

  // Without a callback autocannon returns its instance, an event emitter that is also a promise of the result.
  const instance = autocannon({
    url: new URL(job.path, job.url).toString(),
    connections: job.connections,
    duration: job.durationSeconds,
    sampleInt: SAMPLE_INTERVAL_MS,
    // A 401 is an outcome to count, not a failure of the load generator.
    excludeErrorStats: false,
    setupClient (client) {
      // autocannon builds the clients one after another, so this counter gives each connection its own credential.
      const index = next++ % job.tokens.length
      const token = job.tokens[index] as string
      client.setHeaders({ authorization: `Bearer ${token}` })
      const label = job.groups?.[index]
      const group = label === undefined ? undefined : groups.get(label) ?? { connections: 0, statusCounts: {}, authMs: new Samples() }
      if (label !== undefined && group !== undefined) {
        groups.set(label, group)
        group.connections++
        client.on('response', (status: number) => { group.statusCounts[status] = (group.statusCounts[status] ?? 0) + 1 })
      }
      // http-parser-js hands over the raw header list [name, value, name, value, ...], not the typed object.
      client.on('headers', ((info: { headers?: string[] }) => {
        const raw = info.headers ?? []
        for (let i = 0; i < raw.length; i += 2) {
          if ((raw[i] as string).length === 13 && (raw[i] as string).toLowerCase() === 'server-timing') {
            const match = SERVER_TIMING_AUTH.exec(raw[i + 1] as string)
            if (match !== null) {
              authMs.push(Number(match[1]))
              group?.authMs.push(Number(match[1]))
            }
          }
        }
      }) as unknown as (headers: object) => void)
    }
  }) as unknown as autocannon.Instance & Promise<autocannon.Result>
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
    latencies.push(responseTime)
    lastResponse = performance.now()
    inWindow++
  })
  // Windows of our own, timed here: autocannon's tick shares a timer with its sampling, so its count can straddle two seconds.
  let windowStart = started
  const closeWindow = (now: number): void => {
    const seconds = (now - windowStart) / 1000
    windowStart = now
    total += inWindow
    windows.push({ seconds, requests: inWindow })
    onTick({ second: windows.length, requests: inWindow, seconds, totalRequests: total })
    inWindow = 0
  }
  const windowTimer = setInterval(() => closeWindow(performance.now()), WINDOW_MS)
  let stoppedEarly = false
  const stop = (): void => {
    stoppedEarly = true
    instance.stop()
  }
  if (signal?.aborted === true) stop()
  signal?.addEventListener('abort', stop, { once: true })

  let result: autocannon.Result
  try {
    result = await instance
  } finally {
    clearInterval(windowTimer)
    signal?.removeEventListener('abort', stop)
  }
  // The last window, up to the last response; none when the load ended on a window's edge.
  if (inWindow > 0) closeWindow(Math.max(lastResponse, windowStart))
  const cpu = process.cpuUsage(cpuBefore)
  const sorted = latencies.sorted()
  const authSorted = authMs.sorted()
  const statusCounts: Record<string, number> = {}
  for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCounts[status] = Number(count)

  return {
    requests: result.requests.total,
    durationSeconds: (lastResponse - started) / 1000,
    statusCounts,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      mean: mean(sorted),
      max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1] as number
    },
    serverTimingAuthMs: authSorted.length === 0
      ? null
      : { count: authSorted.length, mean: mean(authSorted), p50: percentile(authSorted, 50), p99: percentile(authSorted, 99) },
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    byGroup: groups.size === 0
      ? null
      : Object.fromEntries([...groups].map(([label, g]) => [label, { connections: g.connections, statusCounts: g.statusCounts, serverTimingAuthMs: timingOf(g.authMs) }])),
    windows,
    stoppedEarly
  }
}

function timingOf (samples: Samples): GroupLoad['serverTimingAuthMs'] {
  const sorted = samples.sorted()
  return sorted.length === 0 ? null : { count: sorted.length, mean: mean(sorted), p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
}
