// A pool: a set of interchangeable upstreams, how one is chosen for a request (strategy.ts), and
// their health checks (health.ts), as one object. The balancer holds the default pool (the app
// servers) and one more per name in ROUTES (say an issuer's), and chooses one per request by
// path prefix (routes.ts); the proxy retries within the pool it was given.
import type http from 'node:http'
import type { Logger } from 'pino'
import { parseUpstreams } from './config.ts'
import type { Strategy } from './config.ts'
import { createHealthChecks } from './health.ts'
import { NO_HEALTHY_BODY } from './replies.ts'
import { DEFAULT_POOL } from './routes.ts'
import { createChooser } from './strategy.ts'
import type { PinnedResponse, SharedCursor } from './strategy.ts'
import { createUpstream, statsOf, viewOf } from './upstream.ts'
import type { Upstream, UpstreamStats, UpstreamView } from './upstream.ts'

export interface PoolOptions {
  /** Its name in ROUTES; default `default`, the pool of UPSTREAMS. */
  name?: string
  /** The upstreams' base URLs, checked by parseUpstreams (a bad one throws). */
  urls: readonly string[]
  strategy: Strategy
  healthIntervalMs: number
  healthTimeoutMs: number
  /** Failed probes in a row before an upstream is taken out (HEALTH_FALL). */
  healthFall: number
  logger: Logger
  /** One upstream's health, or what its /health says, changed. */
  onUpstreamChange?: (view: UpstreamView) => void
  /** The set of upstreams changed (setUpstreams). */
  onUpstreamsChange?: (views: UpstreamView[]) => void
  /** With several threads (threads.ts): the round-robin position every thread shares. */
  shared?: SharedCursor
}

export interface Pool {
  /** Its name in ROUTES (`default` for the pool of UPSTREAMS). */
  readonly name: string
  /** The balancer's 503 when none of its upstreams is healthy: a named pool says which. */
  readonly noHealthyBody: string
  readonly strategy: Strategy
  /** Whether choose() may leave a pin on the response (kPin) for the answer to set. */
  readonly sticky: boolean
  /** The upstreams, in rotation order (the pool's own list: do not change it). */
  readonly upstreams: readonly Upstream[]
  /** The upstream for this request, or undefined when none is healthy. */
  choose (req: http.IncomingMessage, res: PinnedResponse): Upstream | undefined
  /** The passive check: a connection to `upstream` could not be opened. */
  markDown (upstream: Upstream, reason: string): void
  /**
   * Replaces the set. Upstreams that stay keep their health and counters; new ones start
   * healthy and, once the checks run, are probed at once. Throws, changing nothing, on a bad URL.
   */
  setUpstreams (urls: readonly string[]): void
  /**
   * Sets an upstream's health as another thread's checks found it (threads.ts), with no event:
   * the thread that runs the checks has published it. Unknown URLs are ignored.
   */
  setHealthy (url: string, healthy: boolean): void
  /** Runs one round of active health checks now. */
  checkHealth (): Promise<void>
  /** Starts the health checks, the first round one interval from now. */
  start (): void
  /** Stops the health checks. */
  stop (): void
  /** Stops the health checks and frees their sockets. */
  close (): void
  stats (): UpstreamStats[]
  views (): UpstreamView[]
}

export function createPool (options: PoolOptions): Pool {
  const { strategy } = options
  const name = options.name ?? DEFAULT_POOL
  const logger = name === DEFAULT_POOL ? options.logger : options.logger.child({ pool: name })
  const onUpstreamChange = options.onUpstreamChange ?? (() => {})
  const onUpstreamsChange = options.onUpstreamsChange ?? (() => {})
  let list: Upstream[] = parseUpstreams(options.urls).map(createUpstream)
  const chooser = createChooser(strategy, list, options.shared)
  let started = false
  const health = createHealthChecks({
    intervalMs: options.healthIntervalMs,
    timeoutMs: options.healthTimeoutMs,
    fall: options.healthFall,
    logger,
    upstreams: () => list,
    onChange: (upstream) => { onUpstreamChange(viewOf(upstream)) }
  })

  function setUpstreams (urls: readonly string[]): void {
    const next = parseUpstreams(urls)
    const current = new Map(list.map((u) => [u.url, u]))
    const added: Upstream[] = []
    const nextList = next.map((url) => {
      const existing = current.get(url)
      if (existing !== undefined) {
        current.delete(url)
        return existing
      }
      const upstream = createUpstream(url)
      added.push(upstream)
      return upstream
    })
    // Removed upstreams keep their connections so requests in flight finish.
    for (const gone of current.values()) gone.removed = true
    list = nextList
    chooser.use(list)
    if (added.length > 0 || current.size > 0) {
      logger.info({ added: added.map((u) => u.url), removed: [...current.keys()], upstreams: next }, 'upstreams changed')
      onUpstreamsChange(list.map(viewOf))
    }
    if (started) for (const upstream of added) health.check(upstream)
  }

  return {
    name,
    // The default pool's answer is the contract's as it always was; another pool's names itself,
    // so that a client (and the dashboard) can tell "no issuer" from "no app server".
    noHealthyBody: name === DEFAULT_POOL ? NO_HEALTHY_BODY : JSON.stringify({ error: 'no_healthy_upstream', pool: name }),
    strategy,
    sticky: strategy === 'sticky',
    get upstreams () { return list },
    choose: (req, res) => chooser.choose(req, res),
    markDown: health.markDown,
    setUpstreams,
    setHealthy (url, healthy) {
      const upstream = list.find((u) => u.url === url)
      if (upstream !== undefined && !upstream.removed) upstream.healthy = healthy
    },
    checkHealth: health.checkAll,
    start () {
      started = true
      health.start()
    },
    stop () {
      started = false
      health.stop()
    },
    close () {
      started = false
      health.close()
    },
    stats: () => list.map(statsOf),
    views: () => list.map(viewOf)
  }
}
