import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { pino } from 'pino'
import type { Logger } from 'pino'
import type { Agent } from 'undici'
import type { AnswerCounts } from './answer-counts.ts'
import { DEFAULT_MAX_BODY_BYTES } from './config.ts'
import type { BalancerConfig, Strategy } from './config.ts'
import type { ClusterControl } from './control.ts'
import { createDashboard } from './dashboard.ts'
import { createEventHub } from './events.ts'
import type { EventHub } from './events.ts'
import { createPool } from './pool.ts'
import type { Pool } from './pool.ts'
import { createProxy } from './proxy.ts'
import { DEFAULT_POOL, createRouter } from './routes.ts'
import type { Route } from './routes.ts'
import { METHOD_NOT_ALLOWED_BODY, NOT_FOUND_BODY, answerAsterisk, endWithJson, sendJson } from './replies.ts'
import { answeredBeforeBodyEnded } from './request-body.ts'
import { STICKY_COOKIE } from './strategy.ts'
import type { UpstreamStats } from './upstream.ts'

export type { UpstreamStats, UpstreamView } from './upstream.ts'
export { STICKY_COOKIE } from './strategy.ts'

export interface BalancerStats {
  /** The default pool's (the contract's fields). */
  strategy: Strategy
  upstreams: UpstreamStats[]
  /** The balancer's own answers to proxied requests that no upstream is counted for (413, 503). */
  ownAnswers: AnswerCounts
  /** Every pool by name, the default pool (`default`) included. */
  pools: Record<string, PoolStats>
  /** ROUTES: path prefixes to pools, in the order they are tried; empty when everything goes to the default pool. */
  routes: Route[]
}

export interface PoolStats {
  strategy: Strategy
  upstreams: UpstreamStats[]
}

export interface BalancerOptions {
  /** Stop/start for the dashboard's buttons, when a launcher can do it (see control.ts). */
  control?: ClusterControl
}

export interface Balancer {
  readonly server: http.Server
  /** The one keep-alive undici agent every proxied request goes through (exposed for tests and metrics). */
  readonly agent: Agent
  /** The current upstream URLs, in rotation order. */
  readonly upstreams: readonly string[]
  /** Listens on config.host:config.port, starts the health checks; resolves with the URL. */
  listen (): Promise<string>
  /** Stops the health checks and new connections, waits for in-flight requests, frees the sockets. */
  close (): Promise<void>
  stats (): BalancerStats
  /**
   * Replaces the upstream set of a pool (the default pool unless `pool` names another), e.g.
   * after DNS discovery. Upstreams that stay keep their health and counters; new ones start
   * healthy and are checked at once. Throws, changing nothing, if a URL is invalid or no pool has that name.
   */
  setUpstreams (urls: readonly string[], pool?: string): void
  /** Runs one round of active health checks now, in every pool. */
  checkHealth (): Promise<void>
  /** The dashboard's event stream; `events.active` while a page is open. */
  readonly events: EventHub
}

// The client side: headers must arrive quickly, a request body within 30 s;
// idle keep-alive connections from clients are closed after 5 s. Request line
// and headers together may not pass 8 KiB (nginx's default; the app servers
// allow Node's 16 KiB, so the balancer is always the one to refuse). A missing
// Host is the app's business, not a reason for Node to answer without a body.
const SERVER_OPTIONS: http.ServerOptions = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5000,
  maxHeaderSize: 8 * 1024,
  requireHostHeader: false,
  // A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 6.3):
  // Node then skips the body stream's events, and we send such a request upstream bodyless.
  optimizeEmptyRequests: true
}

export function createBalancer (config: BalancerConfig, logger: Logger = pino({ level: 'silent' }), options: BalancerOptions = {}): Balancer {
  // When this balancer started: its totals count from then, and a page seeing another start
  // (npm run demo moves from cluster to cluster behind one port) counts afresh.
  const startedAt = Date.now()
  // Each batch of requests carries the totals, so the dashboard's counts are the balancer's.
  const events = createEventHub({ totals: answerTotals })

  // The default pool: UPSTREAMS, the app servers. Requests go here unless ROUTES sends them to another.
  const pool: Pool = createPool({
    urls: config.upstreams,
    strategy: config.strategy ?? 'round-robin',
    healthIntervalMs: config.healthIntervalMs,
    healthTimeoutMs: config.healthTimeoutMs,
    healthFall: config.healthFall ?? 2,
    logger,
    onUpstreamChange: (view) => { events.publish('upstream', view) },
    onUpstreamsChange: (views) => { events.publish('upstreams', views) }
  })
  // The named pools (ROUTES), each with its own upstreams, strategy and health checks. The
  // dashboard draws the default pool's servers; another pool's changes go out as a `pool` event,
  // which a page that does not draw it ignores.
  const named = new Map<string, Pool>((config.pools ?? []).map((p) => [p.name, createPool({
    name: p.name,
    urls: p.upstreams,
    strategy: p.strategy,
    healthIntervalMs: config.healthIntervalMs,
    healthTimeoutMs: config.healthTimeoutMs,
    healthFall: config.healthFall ?? 2,
    logger,
    onUpstreamChange: () => { events.publish('pool', poolView(p.name)) },
    onUpstreamsChange: () => { events.publish('pool', poolView(p.name)) }
  })]))
  const pools: Pool[] = [pool, ...named.values()]
  const routes = config.routes ?? []
  const poolFor = createRouter(routes.map((r) => ({ prefix: r.prefix, pool: r.pool === DEFAULT_POOL ? pool : named.get(r.pool) ?? pool })), pool)
  function poolView (name: string): { name: string, upstreams: ReturnType<Pool['views']> } {
    return { name, upstreams: named.get(name)?.views() ?? [] }
  }

  const proxy = createProxy({
    proxyTimeoutMs: config.proxyTimeoutMs,
    maxBodyBytes: config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    logger,
    events
  })
  const agent = proxy.agent

  const server = http.createServer(SERVER_OPTIONS, onRequest)
  server.on('clientError', onClientError)
  server.on('connect', onConnect)

  function onRequest (req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/'
    if (url.startsWith('/_balancer') && (url.length === 10 || url[10] === '/' || url[10] === '?')) {
      handleAdmin(req, res, url)
      return
    }
    if (url === '*') {
      if (req.method !== 'OPTIONS') logger.info({ method: req.method, url, remoteAddress: req.socket.remoteAddress }, 'refused an asterisk target without OPTIONS')
      answerAsterisk(req, res)
      return
    }
    proxy.forward(req, res, poolFor(url))
  }

  // What Node's HTTP parser refuses never reaches onRequest: headers over the limit,
  // Content-Length with Transfer-Encoding (request smuggling), a malformed request line
  // or chunk. Node would answer with an empty body; the contract wants JSON, once, and
  // the connection closed (after a framing error nothing more on it can be trusted).
  function onClientError (err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    const [status, error] = err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request_header_fields_too_large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout'] : [400, 'bad_request']
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && answeredBeforeBodyEnded(socket)) {
      // The request was answered already (its upstream answered before the body had all
      // arrived, and the rest was being dropped): a 408 now would be a second answer to it.
      socket.destroy()
      return
    }
    if (!endWithJson(socket, status, JSON.stringify({ error, reason: err.code ?? 'unknown' }))) return
    logger.info({ code: err.code, status, remoteAddress: socket.remoteAddress }, 'refused a request the HTTP parser could not accept')
  }

  // CONNECT asks for a tunnel; without a listener Node just drops the connection.
  function onConnect (req: http.IncomingMessage, socket: Socket): void {
    logger.info({ method: req.method, url: req.url, remoteAddress: socket.remoteAddress }, 'refused a CONNECT')
    endWithJson(socket, 405, METHOD_NOT_ALLOWED_BODY)
  }

  function stats (): BalancerStats {
    return {
      strategy: pool.strategy,
      upstreams: pool.stats(),
      ownAnswers: { ...proxy.ownAnswers },
      pools: Object.fromEntries(pools.map((p) => [p.name, { strategy: p.strategy, upstreams: p.stats() }])),
      routes: routes.map((r) => ({ ...r }))
    }
  }

  function answerTotals (): { answers: Record<string, AnswerCounts>, ownAnswers: AnswerCounts } {
    const answers: Record<string, AnswerCounts> = {}
    for (const p of pools) for (const u of p.upstreams) answers[u.url] = { ...u.answers }
    return { answers, ownAnswers: { ...proxy.ownAnswers } }
  }

  const dashboard = createDashboard({
    hub: events,
    control: options.control,
    snapshot: () => ({ balancerId: config.balancerId, startedAt, strategy: pool.strategy, stickyCookie: STICKY_COOKIE, upstreams: pool.views(), ownAnswers: { ...proxy.ownAnswers }, pools: [...named.keys()].map(poolView), routes }),
    logger
  })

  function handleAdmin (req: http.IncomingMessage, res: http.ServerResponse, url: string): void {
    const query = url.indexOf('?')
    const path = query === -1 ? url : url.slice(0, query)
    if (path !== '/_balancer/stats') {
      if (!dashboard.handle(req, res, path)) sendJson(req, res, 404, NOT_FOUND_BODY)
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      sendJson(req, res, 405, METHOD_NOT_ALLOWED_BODY)
    } else {
      sendJson(req, res, 200, JSON.stringify(stats()))
    }
  }

  function listen (): Promise<string> {
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(config.port, config.host, () => {
        server.off('error', reject)
        // Upstreams start healthy and the first probe comes one interval
        // later; until then the passive check catches a dead one.
        for (const p of pools) p.start()
        resolve(urlOf(server.address() as AddressInfo))
      })
    })
  }

  let closing: Promise<void> | undefined
  function close (): Promise<void> {
    closing ??= shutdown()
    return closing
  }

  async function shutdown (): Promise<void> {
    for (const p of pools) p.stop()
    // An open event stream never goes idle: end it, or close() would wait forever.
    events.close()
    if (server.listening) {
      const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      // close() only drops idle connections; keep-alive connections that
      // were busy become idle once their response is done, so sweep again
      // until the server has closed.
      const sweep = setInterval(() => { server.closeIdleConnections() }, 100)
      sweep.unref()
      await closed
      clearInterval(sweep)
    }
    await agent.close()
    for (const p of pools) p.close()
  }

  function setUpstreams (urls: readonly string[], name: string = DEFAULT_POOL): void {
    const target = name === DEFAULT_POOL ? pool : named.get(name)
    if (target === undefined) throw new Error(`no pool named ${JSON.stringify(name)} (pools: ${pools.map((p) => p.name).join(', ')})`)
    target.setUpstreams(urls)
  }

  async function checkHealth (): Promise<void> {
    await Promise.all(pools.map(async (p) => { await p.checkHealth() }))
  }

  return {
    server,
    agent,
    get upstreams () { return pool.upstreams.map((u) => u.url) },
    listen,
    close,
    stats,
    setUpstreams,
    checkHealth,
    events
  }
}

function urlOf (address: AddressInfo): string {
  let host = address.address
  if (host === '0.0.0.0') host = '127.0.0.1'
  else if (host === '::') host = '::1'
  if (host.includes(':')) host = `[${host}]`
  return `http://${host}:${address.port}`
}
