import { build, type Histogram } from 'hdr-histogram-js'
import { Client } from 'undici'

/**
 * The open-model load generator: requests leave on a fixed schedule (request i is due at
 * start + i / rate), whatever the server is doing, and each one's latency counts from when it was
 * DUE, not from when it left. A request due while every connection is busy waits for the next
 * free one, and that wait is part of its latency. So a server that stalls for 200 ms shows it in
 * every request the stall delayed, as a user arriving meanwhile would see it.
 *
 * Why not autocannon's own rate options (overallRate / connectionRate, autocannon 9.0.0)?
 * - Its rate is a per-connection budget per second, not a schedule: httpClient.js resets
 *   `this.reqsMadeThisSecond = 0` from a `setInterval(..., 1000)` and `_doRequest` sends while
 *   `this.reqsMadeThisSecond++ < this.rate`, else sets `this.paused = true`. Each connection still
 *   waits for its answer before its next request (a closed loop, bursting at the start of every
 *   second), and a request that was not sent during a stall is never owed: it is simply not sent.
 * - Latency counts from when a request left (`resp.duration`), and the one correction, in run.js,
 *   `latencies.recordValueWithExpectedInterval(responseTime, Math.ceil(1 / rate))`, divides a
 *   rate per second into 1 and rounds up: the expected interval is 1 ms whatever the rate, so it
 *   invents one sample per millisecond of every slow answer, too many at a low rate and too few
 *   at a high one (against a 200 ms stall at 400 req/s: 2,833 samples for 847 requests, and a
 *   median of 24 ms where the uncorrected one was 0; docs/compare.md). And it fills autocannon's
 *   own histogram, which load-generator.ts does not use (it records every response's time from
 *   the 'response' event, uncorrected).
 * So the schedule is ours, on undici (one Client per connection, one request in flight on each):
 * this file. Run it only in a process of its own (open-load-process.ts), never in a server's.
 */

export interface OpenLoadJob {
  /** Where to send it: the balancer, e.g. http://127.0.0.1:8080 */
  url: string
  /** The authenticated route, e.g. /feeds */
  path: string
  /** One credential per connection: connection i sends tokens[i % tokens.length]. */
  tokens: string[]
  connections: number
  /** The offered load, requests per second, evenly spaced. */
  rate: number
  durationSeconds: number
  /** A request with no answer after this long is an error (default 5000). */
  timeoutMs?: number
}

export interface Percentiles { p50: number, p90: number, p99: number, mean: number, max: number }

export interface OpenLoadResult {
  offeredRps: number
  /** Answers (any status) per second, from the first due time to the last answer: what the cluster kept up with. */
  achievedRps: number
  /** Requests due during the run. */
  scheduled: number
  /** Due requests that got an answer (any status), including those that arrived after the scheduled seconds. */
  completed: number
  statusCounts: Record<string, number>
  /** Requests sent that got no answer: connection errors and timeouts. */
  errors: number
  /** Requests still waiting for a free connection when the schedule ended: never sent, counted as failed. */
  unsent: number
  /** From when each request was due to its answer (coordinated omission corrected); unanswered ones count with their wait so far. */
  latencyMs: Percentiles
  /** From when each request left to its answer: what a closed loop would report. */
  serviceMs: Percentiles
  /** How late the scheduler itself got to each request (its timers and event loop), before any wait for a connection. */
  sendLagMs: Percentiles
  /** The scheduler ran behind: its p99 lateness above SEND_LAG_LIMIT_MS. Latency then includes the generator's own delay. */
  generatorBehind: boolean
  /** CPU the generator used during the run (its process, all threads). */
  cpuSeconds: number
  /** The scheduled seconds (durationSeconds), and how long the answers after them took to arrive. */
  durationSeconds: number
  drainSeconds: number
}

/** A generator whose own timer runs this late at the 99th percentile is no longer keeping the schedule. */
export const SEND_LAG_LIMIT_MS = 5
/** How long, after the schedule ends, the answers still on their way may take. */
const DRAIN_MS = 2000

/** Microseconds, 1 µs to an hour, three significant digits: HdrHistogram's usual setting. */
function histogram (): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false })
}

function percentilesMs (h: Histogram): Percentiles {
  if (h.totalCount === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, mean: Number.NaN, max: Number.NaN }
  return {
    p50: h.getValueAtPercentile(50) / 1000,
    p90: h.getValueAtPercentile(90) / 1000,
    p99: h.getValueAtPercentile(99) / 1000,
    mean: h.mean / 1000,
    max: h.maxValue / 1000
  }
}

const micros = (ms: number): number => Math.max(1, Math.round(ms * 1000))

interface Connection { client: Client, authorization: string }

// The connections stay open from one job to the next when the next has the same target, tokens
// and count: a step's warm-up then opens them, and the measured step does not pay for TCP setup.
let kept: { key: string, connections: Connection[] } | null = null

function connectionsFor (origin: string, job: OpenLoadJob, timeoutMs: number): Connection[] {
  const key = JSON.stringify([origin, job.tokens, job.connections, timeoutMs])
  if (kept?.key === key) return kept.connections
  closeConnections()
  const connections = Array.from({ length: job.connections }, (_, i) => ({
    client: new Client(origin, { pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connectTimeout: timeoutMs }),
    authorization: `Bearer ${job.tokens[i % job.tokens.length] as string}`
  }))
  kept = { key, connections }
  return connections
}

/** Closes the connections kept for the next job (the process entry calls it before it exits). */
export function closeConnections (): void {
  for (const c of kept?.connections ?? []) c.client.destroy().catch(() => {})
  kept = null
}

export async function runOpenLoad (job: OpenLoadJob): Promise<OpenLoadResult> {
  if (job.tokens.length === 0) throw new Error('runOpenLoad needs at least one token')
  if (!(job.rate > 0) || !(job.durationSeconds > 0)) throw new Error('runOpenLoad needs a rate and a duration above 0')
  const timeoutMs = job.timeoutMs ?? 5000
  const origin = new URL(job.url).origin
  const connections = connectionsFor(origin, job, timeoutMs)
  // Idle connections, longest idle first: the credentials take turns.
  const free: Connection[] = [...connections]
  // Due times of requests waiting for a connection, oldest first (a head index, not shift(): it can grow long).
  const waiting: number[] = []
  let waitingHead = 0

  const latency = histogram()
  const service = histogram()
  const sendLag = histogram()
  const statusCounts: Record<string, number> = {}
  let errors = 0
  let completed = 0
  let inFlight = 0
  let lastAnswer = 0
  const interval = 1000 / job.rate
  const total = Math.max(1, Math.round(job.rate * job.durationSeconds))
  const cpuBefore = process.cpuUsage()
  const start = performance.now() + 5 // a moment to let the first timer line up
  const end = start + job.durationSeconds * 1000
  let drained: () => void = () => {}

  const send = (conn: Connection, due: number): void => {
    inFlight++
    const sentAt = performance.now()
    conn.client.request({ origin, path: job.path, method: 'GET', headers: { authorization: conn.authorization } })
      .then(async (res) => {
        await res.body.dump()
        const now = performance.now()
        statusCounts[res.statusCode] = (statusCounts[res.statusCode] ?? 0) + 1
        completed++
        lastAnswer = now
        latency.recordValue(micros(now - due))
        service.recordValue(micros(now - sentAt))
      }, () => {
        errors++
        latency.recordValue(micros(performance.now() - due))
      })
      .finally(() => {
        inFlight--
        if (waitingHead < waiting.length) send(conn, waiting[waitingHead++] as number)
        else free.push(conn)
        if (inFlight === 0 && next >= total) drained()
      })
  }

  let next = 0
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now()
      while (next < total && start + next * interval <= now) {
        const due = start + next * interval
        next++
        sendLag.recordValue(micros(now - due))
        const conn = free.shift()
        if (conn === undefined) waiting.push(due)
        else send(conn, due)
      }
      if (next >= total) resolve()
      else setTimeout(tick, Math.max(0, start + next * interval - performance.now()))
    }
    setTimeout(tick, Math.max(0, start - performance.now()))
  })
  // The schedule is over: what is in flight may still answer, for a while.
  const scheduleEnded = Math.max(performance.now(), end)
  if (inFlight > 0) {
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve) => {
      drained = resolve
      timer = setTimeout(resolve, DRAIN_MS)
    })
    clearTimeout(timer)
  }
  const drainSeconds = (performance.now() - scheduleEnded) / 1000
  // Never sent: they count as failed, with the wait they had so far (a lower bound).
  const stopped = performance.now()
  const unsent = waiting.length - waitingHead
  for (let i = waitingHead; i < waiting.length; i++) latency.recordValue(micros(stopped - (waiting[i] as number)))
  waitingHead = waiting.length
  if (inFlight > 0) {
    // Destroying the clients fails what is still out: each rejection counts it in `errors`.
    kept = null
    await Promise.all(connections.map(async (c) => await c.client.destroy().catch(() => {})))
    await new Promise((resolve) => setImmediate(resolve))
  }
  const cpu = process.cpuUsage(cpuBefore)
  const lag = percentilesMs(sendLag)
  const latencyMs = percentilesMs(latency)
  const serviceMs = percentilesMs(service)

  return {
    offeredRps: job.rate,
    // Answers per second from the first due time to the last answer, less a typical answer's own
    // time (the last request is due at the very end and takes that long even when nothing queues):
    // the schedule's length when the cluster kept up, longer when a backlog trailed behind it.
    achievedRps: completed / Math.max(job.durationSeconds, (lastAnswer - start) / 1000 - (Number.isFinite(serviceMs.p50) ? serviceMs.p50 / 1000 : 0)),
    scheduled: total,
    completed,
    statusCounts,
    errors,
    unsent,
    latencyMs,
    serviceMs,
    sendLagMs: lag,
    generatorBehind: lag.p99 > SEND_LAG_LIMIT_MS,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    durationSeconds: job.durationSeconds,
    drainSeconds
  }
}
