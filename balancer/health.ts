// Whether each upstream of a pool may get requests. Active checks: every interval each
// upstream's `GET /health` is probed (status < 500 within the timeout = healthy), which also
// brings upstreams back. Passive check: the proxy calls markDown when a connection to an
// upstream cannot be opened. Never on the proxy's path otherwise.
import http from 'node:http'
import type { Logger } from 'pino'
import { errorCode } from './replies.ts'
import type { Upstream } from './upstream.ts'

export interface HealthOptions {
  /** How often every upstream's `/health` is polled. */
  intervalMs: number
  /** How long a probe may take before it counts as failed. */
  timeoutMs: number
  /** Failed probes in a row (timed out, 5xx, reset) before an upstream is taken out. */
  fall: number
  logger: Logger
  /** The upstreams to probe, as they are now (the set can change between rounds). */
  upstreams: () => readonly Upstream[]
  /** An upstream went down or up, or its /health said something new about it. */
  onChange: (upstream: Upstream) => void
}

export interface HealthChecks {
  /** Probes one upstream now; a probe already in flight is joined, not doubled. */
  check (upstream: Upstream): Promise<void>
  /** Runs one round over every upstream now. */
  checkAll (): Promise<void>
  /** Starts the rounds, one interval from now. */
  start (): void
  /** Stops the rounds (a probe in flight runs on). */
  stop (): void
  /** Frees the probes' sockets. */
  close (): void
  /** Takes an upstream out at once (the passive check); the next good probe brings it back. */
  markDown (upstream: Upstream, reason: string): void
}

export function createHealthChecks (options: HealthOptions): HealthChecks {
  const { intervalMs, timeoutMs, fall, logger, upstreams, onChange } = options
  // Health checks use their own short-lived connections: a probe must test
  // that a new connection is accepted, and must never wait behind or race
  // with proxied traffic on a pooled socket.
  const agent = new http.Agent({ keepAlive: false })
  let timer: NodeJS.Timeout | undefined
  let running = false

  function markDown (upstream: Upstream, reason: string): void {
    if (!upstream.healthy || upstream.removed) return
    upstream.healthy = false
    logger.warn({ upstream: upstream.url, reason }, 'upstream down')
    onChange(upstream)
  }

  function markUp (upstream: Upstream): void {
    if (upstream.healthy || upstream.removed) return
    upstream.healthy = true
    logger.info({ upstream: upstream.url }, 'upstream up')
    onChange(upstream)
  }

  // Health answers are read for the dashboard: which server this is, its
  // mode, and whether it reaches its session store. Once per interval per
  // upstream, never on the proxy path.
  function readHealth (upstream: Upstream, res: http.IncomingMessage): void {
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => { if (body.length < 4096) body += chunk })
    res.on('error', () => {})
    res.on('end', () => {
      let parsed: Record<string, unknown>
      try {
        parsed = JSON.parse(body) as Record<string, unknown>
      } catch {
        return
      }
      const text = (value: unknown): string | null => typeof value === 'string' ? value.slice(0, 64) : null
      const health = { servedBy: text(parsed.servedBy), mode: text(parsed.mode), store: text(parsed.store) }
      const before = upstream.health
      if (health.servedBy === before.servedBy && health.mode === before.mode && health.store === before.store) return
      upstream.health = health
      onChange(upstream)
    })
  }

  function check (upstream: Upstream): Promise<void> {
    if (upstream.probe !== undefined) return upstream.probe
    upstream.probe = new Promise((resolve) => {
      let done = false
      const finish = (ok: boolean, reason: string): void => {
        if (done) return
        done = true
        upstream.probe = undefined
        if (ok) {
          upstream.probeFailures = 0
          markUp(upstream)
        } else if (!upstream.removed) {
          upstream.failures++
          upstream.probeFailures++
          // A refused connection is certain (nothing listens); a timeout or a 5xx
          // may be one slow moment on a busy machine, so it must repeat (haproxy's `fall`).
          if (reason === 'ECONNREFUSED' || upstream.probeFailures >= fall) markDown(upstream, reason)
        }
        resolve()
      }
      const probe = http.get(upstream.healthUrl, { agent, timeout: timeoutMs }, (res) => {
        readHealth(upstream, res)
        const status = res.statusCode ?? 0
        finish(status < 500, `health check answered ${status}`)
      })
      probe.on('timeout', () => { probe.destroy(Object.assign(new Error('health check timed out'), { code: 'ETIMEDOUT' })) })
      probe.on('error', (err) => { finish(false, errorCode(err)) })
    })
    return upstream.probe
  }

  async function checkAll (): Promise<void> {
    await Promise.all(upstreams().map(check))
  }

  // A new round starts only when the previous one finished, so a hanging
  // upstream never piles up probes.
  function schedule (): void {
    if (!running) return
    timer = setTimeout(() => {
      checkAll().then(schedule, schedule)
    }, intervalMs)
    timer.unref()
  }

  function start (): void {
    running = true
    schedule()
  }

  function stop (): void {
    running = false
    clearTimeout(timer)
  }

  function close (): void {
    stop()
    agent.destroy()
  }

  return { check, checkAll, start, stop, close, markDown }
}
