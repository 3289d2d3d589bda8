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
import { addTotals, mergeStats } from './thread-stats.ts'
import type { ThreadRole } from './thread-role.ts'
import type { UpstreamStats, UpstreamView } from './upstream.ts'

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
  /** With BALANCER_THREADS above 1: each thread's own share (the counts above are their sums). */
  threads?: ThreadShare[]
}

/** One thread's share of the counts, with the health that thread acts on. */
export interface ThreadShare {
  thread: number
  /** False when the thread did not answer within five seconds: the sums above lack its share. */
  answered: boolean
  upstreams: UpstreamStats[]
  ownAnswers: AnswerCounts
}

/** The answers counted so far, per upstream URL and the balancer's own: what every dashboard batch carries. */
export interface AnswerTotals {
  answers: Record<string, AnswerCounts>
  ownAnswers: AnswerCounts
}

export interface PoolStats {
  strategy: Strategy
  upstreams: UpstreamStats[]
}

export interface BalancerOptions {
  /** Stop/start for the dashboard's buttons, when a launcher can do it (see control.ts). */
  control?: ClusterControl
  /** One of several threads sharing the port (thread-role.ts); absent with BALANCER_THREADS=1. */
  thread?: ThreadRole
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
  /** The pool of that name (`default` for UPSTREAMS), for the threads' wiring (threads.ts). */
  pool (name: string): Pool | undefined
  /** What this thread alone counted: its answers per upstream URL, and its own. */
  totals (): AnswerTotals
  /** The leader thread's private listener for the admin paths the other threads relay; '' otherwise. */
  readonly adminUrl: string
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
  const role = options.thread
  const leader = role?.kind === 'leader' ? role : undefined
  // Each batch of requests carries the totals, so the dashboard's counts are the balancer's. A
  // follower thread has no page of its own: its hub hands requests to the leader's.
  const events = role?.kind === 'follower'
    ? role.events
    : createEventHub({ totals: answerTotals, ...(leader === undefined ? {} : { onActive: leader.peers.onEventsActive }) })
  // The pools in one order in every thread: the default first, then config.pools. With threads,
  // slot i of the shared cursors is pool i's round-robin position.
  const shared = (slot: number): { shared?: { cursors: Int32Array, slot: number } } => role === undefined ? {} : { shared: { cursors: role.cursors, slot } }
  // A health change: a follower tells the leader what its own proxy saw (a connection refused);
  // the leader tells every follower what its checks found.
  const healthChanged = (name: string, view: UpstreamView): void => {
    if (role?.kind === 'follower') {
      if (!view.healthy) role.markedDown(name, view.url)
    } else {
      leader?.peers.onUpstreamChange(name, view)
    }
  }
  const setChanged = (name: string, views: UpstreamView[]): void => { leader?.peers.onUpstreamsChange(name, views.map((v) => v.url)) }

  // The default pool: UPSTREAMS, the app servers. Requests go here unless ROUTES sends them to another.
  const pool: Pool = createPool({
    urls: config.upstreams,
    strategy: config.strategy ?? 'round-robin',
    healthIntervalMs: config.healthIntervalMs,
    healthTimeoutMs: config.healthTimeoutMs,
    healthFall: config.healthFall ?? 2,
    logger,
    onUpstreamChange: (view) => {
      healthChanged(DEFAULT_POOL, view)
      events.publish('upstream', withTotals(view))
    },
    onUpstreamsChange: (views) => {
      setChanged(DEFAULT_POOL, views)
      events.publish('upstreams', views.map(withTotals))
    },
    ...shared(0)
  })
  // The named pools (ROUTES), each with its own upstreams, strategy and health checks. The
  // dashboard draws the default pool's servers; another pool's changes go out as a `pool` event,
  // which a page that does not draw it ignores.
  const named = new Map<string, Pool>((config.pools ?? []).map((p, i) => [p.name, createPool({
    name: p.name,
    urls: p.upstreams,
    strategy: p.strategy,
    healthIntervalMs: config.healthIntervalMs,
    healthTimeoutMs: config.healthTimeoutMs,
    healthFall: config.healthFall ?? 2,
    logger,
    onUpstreamChange: (view) => {
      healthChanged(p.name, view)
      events.publish('pool', poolView(p.name))
    },
    onUpstreamsChange: (views) => {
      setChanged(p.name, views)
      events.publish('pool', poolView(p.name))
    },
    ...shared(i + 1)
  })]))
  const pools: Pool[] = [pool, ...named.values()]
  const routes = config.routes ?? []
  const poolFor = createRouter(routes.map((r) => ({ prefix: r.prefix, pool: r.pool === DEFAULT_POOL ? pool : named.get(r.pool) ?? pool })), pool)
  function poolView (name: string): { name: string, upstreams: UpstreamView[] } {
    return { name, upstreams: (named.get(name)?.views() ?? []).map(withTotals) }
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
  // The leader's admin paths for the other threads: a client's connection lands on any thread
  // (the kernel chooses), and every thread but the leader relays /_balancer/* here, so that the
  // stats and the dashboard are answered in one place, once.
  const adminServer = leader === undefined ? undefined : http.createServer(SERVER_OPTIONS, (req, res) => { handleAdmin(req, res, req.url ?? '/') })
  let adminUrl = ''

  function onRequest (req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/'
    if (url.startsWith('/_balancer') && (url.length === 10 || url[10] === '/' || url[10] === '?')) {
      if (role?.kind === 'follower') role.admin(req, res)
      else handleAdmin(req, res, url)
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

  // This thread's own counts.
  function totals (): AnswerTotals {
    const answers: Record<string, AnswerCounts> = {}
    for (const p of pools) for (const u of p.upstreams) answers[u.url] = { ...u.answers }
    return { answers, ownAnswers: { ...proxy.ownAnswers } }
  }

  // The balancer's: with threads, the leader's counts and what the others last reported.
  function answerTotals (): AnswerTotals {
    return leader === undefined ? totals() : addTotals(totals(), leader.peers.totals())
  }

  // An upstream's view with the answers of every thread (the leader's dashboard).
  function withTotals (view: UpstreamView): UpstreamView {
    if (leader === undefined) return view
    const answers = answerTotals().answers[view.url]
    return answers === undefined ? view : { ...view, answers }
  }

  const dashboard = createDashboard({
    hub: events,
    control: options.control,
    snapshot: () => ({ balancerId: config.balancerId, startedAt, strategy: pool.strategy, stickyCookie: STICKY_COOKIE, upstreams: pool.views().map(withTotals), ownAnswers: answerTotals().ownAnswers, pools: [...named.keys()].map(poolView), routes }),
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
    } else if (leader === undefined) {
      sendJson(req, res, 200, JSON.stringify(stats()))
    } else {
      // Every other thread's share, asked for now, so the sums are exact when the load has stopped.
      leader.peers.stats().then((others) => {
        if (!res.destroyed) sendJson(req, res, 200, JSON.stringify(mergeStats(stats(), others)))
      }, (err: unknown) => {
        logger.error({ err }, 'could not gather the threads\' stats')
        if (!res.destroyed) sendJson(req, res, 503, JSON.stringify({ error: 'stats_unavailable' }))
      })
    }
  }

  async function listen (): Promise<string> {
    // With threads, every one listens on the same port with SO_REUSEPORT, and the kernel spreads
    // new connections over them. The leader listens first (PORT=0 picks the port the others take).
    const url = await listenOn(server, { port: config.port, host: config.host, ...(role === undefined ? {} : { reusePort: true }) })
    if (adminServer !== undefined) adminUrl = await listenOn(adminServer, { port: 0, host: '127.0.0.1' })
    // Upstreams start healthy and the first probe comes one interval later; until then the
    // passive check catches a dead one. One thread checks (the leader), and tells the others.
    if (role?.kind !== 'follower') for (const p of pools) p.start()
    return url
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
    await drain(server)
    // After the clients' server: a relayed admin request in flight is answered too.
    if (adminServer !== undefined) await drain(adminServer)
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
    events,
    pool: (name) => name === DEFAULT_POOL ? pool : named.get(name),
    totals,
    get adminUrl () { return adminUrl }
  }
}

// Stops taking connections and resolves once every request in flight is answered.
async function drain (server: http.Server): Promise<void> {
  if (!server.listening) return
  const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  // close() only drops idle connections; keep-alive connections that were busy become idle once
  // their response is done, so sweep again until the server has closed.
  const sweep = setInterval(() => { server.closeIdleConnections() }, 100)
  sweep.unref()
  await closed
  clearInterval(sweep)
}

function listenOn (server: http.Server, options: { port: number, host: string, reusePort?: boolean }): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => {
      server.off('error', reject)
      resolve(urlOf(server.address() as AddressInfo))
    })
  })
}

function urlOf (address: AddressInfo): string {
  let host = address.address
  if (host === '0.0.0.0') host = '127.0.0.1'
  else if (host === '::') host = '::1'
  if (host.includes(':')) host = `[${host}]`
  return `http://${host}:${address.port}`
}
