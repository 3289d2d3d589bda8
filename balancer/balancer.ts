import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { Agent } from 'undici'
import type { Dispatcher } from 'undici'
import { DEFAULT_MAX_BODY_BYTES } from './config.ts'
import type { BalancerConfig, Strategy } from './config.ts'
import type { ClusterControl } from './control.ts'
import { createDashboard } from './dashboard.ts'
import { createEventHub, reasonOf } from './events.ts'
import type { EventHub } from './events.ts'
import { HOP_BY_HOP, connectionOptions, forwardedHeaders, originPath, passInterim } from './hop-headers.ts'
import { GATEWAY_TIMEOUT_BODY, METHOD_NOT_ALLOWED_BODY, NOT_FOUND_BODY, NO_HEALTHY_BODY, answerAsterisk, badGatewayBody, endWithJson, errorCode, sendJson } from './replies.ts'
import { createPool } from './pool.ts'
import type { Pool } from './pool.ts'
import { ForwardedBody, answerTooLarge, answeredBeforeBodyEnded, bodySent, closeLingering, declaredTooLarge, endWhenBodyEnds, hasBody, lingering } from './request-body.ts'
import { STICKY_COOKIE, kPin, pinCookie } from './strategy.ts'
import type { PinnedResponse } from './strategy.ts'
import type { Upstream, UpstreamStats } from './upstream.ts'
import { createUpstreamConnector } from './upstream-connector.ts'

export type { UpstreamStats, UpstreamView } from './upstream.ts'
export { STICKY_COOKIE } from './strategy.ts'

export interface BalancerStats {
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
   * Replaces the upstream set (e.g. after DNS discovery). Upstreams that stay
   * keep their health and counters; new ones start healthy and are checked
   * at once. Throws, changing nothing, if a URL is invalid.
   */
  setUpstreams (urls: readonly string[]): void
  /** Runs one round of active health checks now. */
  checkHealth (): Promise<void>
  /** The dashboard's event stream; `events.active` while a page is open. */
  readonly events: EventHub
}

// Per-request state lives on the response object under symbols, so the hot
// path allocates no closure and no side table: one handler object per attempt.
const kAttempt = Symbol('balancer.attempt')
const kTries = Symbol('balancer.tries')
const kHasBody = Symbol('balancer.hasBody')
// Set only while a dashboard watches: when the request arrived, and what the
// upstream's answer said that the dashboard shows.
const kStarted = Symbol('balancer.started')
const kSeen = Symbol('balancer.seen')
// Set only while the upstream is paused because the client stopped reading.
const kStallTimer = Symbol('balancer.stallTimer')

/** What the shared listeners and the dashboard need of an attempt (the class lives in createBalancer). */
interface AttemptState {
  readonly upstream: Upstream
  controller: Dispatcher.DispatchController | undefined
}

interface ProxiedResponse extends http.ServerResponse, PinnedResponse {
  /** The attempt in flight (or the last one); an earlier attempt's late events are ignored. */
  [kAttempt]: AttemptState | undefined
  [kTries]: number
  /**
   * Whether the request has a body, read from its headers before forwardedHeaders() drops
   * Transfer-Encoding from them for the upstream hop.
   */
  [kHasBody]: boolean
  [kStarted]?: number
  [kSeen]?: { servedBy: string | string[] | undefined, authenticate: string | string[] | undefined }
  [kStallTimer]: NodeJS.Timeout | undefined
}

// undici's names for an upstream that stayed silent past PROXY_TIMEOUT_MS:
// before its headers (504) or between two chunks of its body (cut off).
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
// Failures to open a connection: nothing of the request reached the upstream,
// and the upstream is surely unreachable, so it is taken out at once. A reset
// or close of an open connection is not proof (it may be the keep-alive race:
// the upstream closed an idle socket as we reused it); the next connection
// attempt, or the health checks, decide.
const CONNECT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'])
// How undici reports a connection the upstream closed or reset under us.
const RESET_CODES = new Set(['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET'])

// The upstream side is undici (the client behind Node's fetch, and
// @fastify/reply-from's default): measured in npm run bench:balancer, it costs
// about a third less CPU per proxied request than node:http's client.
// Sized for a demo cluster under autocannon: enough connections per upstream
// for every client connection. Idle connections are closed after 4 s, below
// the usual 5 s server keep-alive, so we do not reuse a socket the upstream is
// closing (undici also honours the upstream's `Keep-Alive: timeout=` hint).
const AGENT_OPTIONS: Agent.Options = {
  connections: 256,
  pipelining: 1,
  keepAliveTimeout: 4000,
  keepAliveMaxTimeout: 4000
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
  const agent = new Agent({ ...AGENT_OPTIONS, headersTimeout: config.proxyTimeoutMs, bodyTimeout: config.proxyTimeoutMs, connect: createUpstreamConnector({ timeout: config.proxyTimeoutMs }) })
  const proxyTimeoutMs = config.proxyTimeoutMs
  const maxBodyBytes = config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const events = createEventHub()

  // The app servers. Several pools, chosen per request, would each be one more createPool().
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
    // The balancer is the edge: what a client says in X-Forwarded-* is not evidence of
    // anything, and the app servers trust these headers from us (TRUST_PROXY).
    // forwardedHeaders() overwrites all four from the connection itself.
    const r = res as ProxiedResponse
    r[kAttempt] = undefined
    r[kTries] = 0
    r[kHasBody] = hasBody(req.headers)
    r[kStallTimer] = undefined
    res.on('close', onResponseClose)
    if (events.active) watch(r)
    if (r[kHasBody] && declaredTooLarge(req.headers, maxBodyBytes)) {
      // Refused on its Content-Length before anything is forwarded (nginx's client_max_body_size).
      logger.info({ method: req.method, url: req.url, contentLength: req.headers['content-length'], limit: maxBodyBytes, remoteAddress: req.socket.remoteAddress }, 'refused a request body over MAX_BODY_BYTES')
      answerTooLarge(res, maxBodyBytes)
      return
    }
    dispatch(req, r, undefined)
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

  function dispatch (req: http.IncomingMessage, res: ProxiedResponse, lastFailure: string | undefined): void {
    const upstream = pool.choose(req, res)
    if (upstream === undefined) {
      if (lastFailure === undefined) sendJson(req, res, 503, NO_HEALTHY_BODY)
      else sendJson(req, res, 502, lastFailure)
      return
    }
    res[kTries]++
    upstream.requests++
    // A request without a body (most GETs) is complete already: it is sent with none instead
    // of an empty stream. A body is sent once (never retried), counted against the limit.
    const body = res[kHasBody] ? new ForwardedBody(req, res, maxBodyBytes, refuseBodyTooLarge) : null
    const attempt = new Attempt(res, upstream, body)
    res[kAttempt] = attempt
    try {
      agent.dispatch({
        origin: upstream.origin,
        method: req.method as Dispatcher.HttpMethod,
        path: upstream.basePath + originPath(req.url ?? '/'),
        headers: forwardedHeaders(req),
        body
      }, attempt)
    } catch (err) {
      // undici throws synchronously on a request it cannot send (e.g. a
      // path it rejects); answer instead of crashing.
      upstream.failures++
      body?.destroy()
      logger.warn({ err, upstream: upstream.url, method: req.method, url: req.url }, 'request could not be proxied')
      sendJson(req, res, 502, badGatewayBody(errorCode(err)))
    }
  }

  // The client's body passed MAX_BODY_BYTES while it was being forwarded (a chunked body, or
  // one dropped after an early answer): nothing more of it goes upstream or is read.
  function refuseBodyTooLarge (body: ForwardedBody): void {
    const res = body.res as ProxiedResponse
    const attempt = res[kAttempt]
    logger.info({ method: res.req.method, url: res.req.url, received: body.received, limit: maxBodyBytes, upstream: attempt?.upstream.url, remoteAddress: res.req.socket.remoteAddress }, 'refused a request body over MAX_BODY_BYTES')
    if (res.headersSent && (res.writableFinished || lingering(res))) {
      // Answered already (the upstream answered before the body ended), and the rest of the body
      // was being dropped: only the connection is left to close (lingering already does).
      if (res.writableFinished) closeLingering(res.req)
      else res.req.resume()
      return
    }
    // The attempt is set aside first, so the error our abort causes is not taken for an
    // upstream failure, and a request still waiting for a connection is never sent.
    res[kAttempt] = undefined
    // Midway through the upstream's answer, it cannot be finished without reading on: cut off.
    if (res.headersSent) res.destroy()
    else answerTooLarge(res, maxBodyBytes)
    const controller = attempt?.controller
    if (controller !== undefined && !controller.aborted) controller.abort(new Error('request body too large'))
    body.destroy()
  }

  // One attempt at one upstream: undici calls these as the answer arrives,
  // with no IncomingMessage or stream in between. The answer's status and
  // headers, then its body, are copied into the client's response.
  class Attempt implements Dispatcher.DispatchHandler, AttemptState {
    readonly res: ProxiedResponse
    readonly upstream: Upstream
    /** The client's body on its way upstream, or null for a request without one. */
    readonly body: ForwardedBody | null
    controller: Dispatcher.DispatchController | undefined

    constructor (res: ProxiedResponse, upstream: Upstream, body: ForwardedBody | null) {
      this.res = res
      this.upstream = upstream
      this.body = body
      this.controller = undefined
    }

    onRequestStart (controller: Dispatcher.DispatchController): void {
      this.controller = controller
      // The client left, or was answered (a body over the limit), while the request waited for a connection.
      if (this.res.destroyed || this.res[kAttempt] !== this) controller.abort(new Error('client closed'))
    }

    onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
      const res = this.res
      if (res.destroyed || res.writableEnded || res[kAttempt] !== this) {
        controller.abort(new Error('client closed'))
        return
      }
      // undici hands interim 1xx answers (103 Early Hints, 102) to the same callback, before the
      // final one. They are not the answer: passed on where the client can take them, or dropped.
      if (statusCode < 200) {
        passInterim(res, statusCode, headers)
        return
      }
      // One flat [name, value, ...] list handed to writeHead: Node writes it as it is,
      // with no per-header setHeader() and no map of them (the fast path).
      const out: string[] = []
      const named = connectionOptions(headers.connection)
      for (const name in headers) {
        const value = headers[name]
        if (value === undefined || HOP_BY_HOP.has(name) || (named !== undefined && named.includes(name))) continue
        if (typeof value === 'string') {
          out.push(name, value)
        } else {
          for (let i = 0; i < value.length; i++) out.push(name, value[i] as string)
        }
      }
      // The pin cookie goes next to the upstream's own Set-Cookies, never in their place.
      if (pool.sticky) {
        const pin = res[kPin]
        if (pin !== undefined) out.push('set-cookie', pinCookie(pin))
      }
      // Only while a dashboard watches: what its line needs from the upstream's answer.
      if (res[kStarted] !== undefined) res[kSeen] = { servedBy: headers['x-served-by'], authenticate: headers['www-authenticate'] }
      try {
        // The status code only: Node writes the standard reason phrase. The
        // upstream's own phrase may hold bytes a parser lets through and
        // writeHead refuses (http-proxy copied it, and the throw killed the process).
        res.writeHead(statusCode, out)
      } catch (err) {
        // A header Node will not write (a byte it refuses in a value): the
        // upstream's answer cannot be passed on as it is. Answered before the
        // abort, so the abort's error finds the client answered and is ignored.
        this.upstream.failures++
        logger.warn({ err, upstream: this.upstream.url, method: res.req.method, url: res.req.url }, 'upstream answer has a header that cannot be passed on')
        sendJson(res.req, res, 502, badGatewayBody('invalid_upstream_header'))
        controller.abort(new Error('upstream answer not passed on'))
      }
    }

    // The body, chunk by chunk, with back-pressure: a slow client pauses the
    // upstream's response instead of our memory filling up. A client that stops
    // reading altogether would hold the upstream request and its connection for
    // ever (undici's body timeout does not run while paused): once its connection
    // has taken no byte for PROXY_TIMEOUT_MS, its response is cut off and the
    // upstream request aborted (nginx's send_timeout, between two successful writes).
    onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
      const res = this.res
      if (res.destroyed) return
      if (!res.write(chunk)) {
        controller.pause()
        res.once('drain', onClientDrain)
        res[kStallTimer] = setTimeout(onClientStalled, proxyTimeoutMs, res, res.writableLength)
      }
    }

    onResponseEnd (): void {
      const res = this.res
      if (res.destroyed) return
      // An early answer (the body is still arriving) on a connection that closes after it.
      if (this.body !== null && !res.shouldKeepAlive && !res.req.complete) endWhenBodyEnds(res)
      else res.end()
    }

    onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
      if (this.res[kAttempt] !== this) return // an earlier attempt's
      onProxyError(this, err)
    }
  }

  function watch (res: ProxiedResponse): void {
    res[kStarted] = performance.now()
    res.once('finish', onWatchedFinish)
  }

  // Runs only for requests that arrived while a dashboard was open.
  function onWatchedFinish (this: ProxiedResponse): void {
    const status = this.statusCode
    // An upstream's answer (kSeen), or the balancer's own (its headers are in the map).
    const seen = this[kSeen]
    const servedBy = seen === undefined ? this.getHeader('x-served-by') : seen.servedBy
    const by = typeof servedBy === 'string' ? servedBy : null
    const authenticate = seen === undefined ? this.getHeader('www-authenticate') : seen.authenticate
    const url = this.req.url ?? '/'
    const query = url.indexOf('?')
    events.request({
      t: Date.now(),
      method: this.req.method ?? 'GET',
      path: (query === -1 ? url : url.slice(0, query)).slice(0, 200),
      status,
      servedBy: by,
      upstream: this[kAttempt]?.upstream.url ?? null,
      ms: Math.round((performance.now() - (this[kStarted] ?? 0)) * 100) / 100,
      reason: reasonOf(status, typeof authenticate === 'string' ? authenticate : undefined, by)
    })
  }

  // The current attempt failed (onResponseError has set earlier attempts aside).
  function onProxyError (attempt: Attempt, err: Error): void {
    const { upstream, res: r } = attempt
    // A body is never sent twice: what is left of it is dropped (undici does not always destroy
    // its body on an error, e.g. when the connection was refused before it was written).
    attempt.body?.destroy()
    // The client is gone (this is often the abort our own close listener
    // caused) or was already answered.
    if (r.destroyed || r.writableEnded) return
    const req = r.req

    const code = errorCode(err)
    if (r.headersSent) {
      // The status line is gone, so the only honest signal left is to cut the client's response short.
      r.destroy()
      if (attempt.body !== null && !bodySent(attempt.body) && RESET_CODES.has(code)) {
        // The upstream answered before it had read our whole request body, then closed (an
        // early 413 or 401 does that), and its reset cut the answer short: the upstream is not
        // failing, it refused the body. (When the answer is whole first, undici reports no error.)
        logger.info({ upstream: upstream.url, code, method: req.method, url: req.url }, 'upstream answered early and closed before reading the whole request body')
        return
      }
      // The upstream failed mid-body (closed, reset or silent too long).
      upstream.failures++
      logger.warn({ upstream: upstream.url, code, method: req.method, url: req.url }, 'upstream failed mid-response')
      return
    }
    upstream.failures++
    if (TIMEOUT_CODES.has(code)) {
      logger.warn({ upstream: upstream.url, code, method: req.method, url: req.url, timeoutMs: proxyTimeoutMs }, 'upstream timed out')
      sendJson(req, r, 504, GATEWAY_TIMEOUT_BODY)
      return
    }
    if (CONNECT_CODES.has(code)) pool.markDown(upstream, code)
    const retry = canRetry(req, r)
    logger.warn({ upstream: upstream.url, code, method: req.method, url: req.url, retry }, 'proxy error')
    if (retry) {
      dispatch(req, r, badGatewayBody(code))
    } else {
      sendJson(req, r, 502, badGatewayBody(code))
    }
  }

  // PROXY_TIMEOUT_MS after the client's response paused the upstream, and it has not drained:
  // if its connection took no byte since `waiting` bytes were waiting, it has stopped reading.
  function onClientStalled (res: ProxiedResponse, waiting: number): void {
    res[kStallTimer] = undefined
    if (res.destroyed || res.writableFinished) return
    const left = res.writableLength
    if (left < waiting) {
      // Slow, but reading: with megabytes in the kernel's buffers between us, a drain can take a while.
      res[kStallTimer] = setTimeout(onClientStalled, proxyTimeoutMs, res, left)
      return
    }
    logger.warn({ upstream: res[kAttempt]?.upstream.url, method: res.req.method, url: res.req.url, timeoutMs: proxyTimeoutMs, remoteAddress: res.req.socket.remoteAddress }, 'client stopped reading its response: cut off, upstream request aborted')
    // Closing the response runs onResponseClose, which aborts the upstream request.
    res.destroy()
  }

  // A request can be sent again only if nothing about it can have taken
  // effect and its body is not already consumed: idempotent, bodyless
  // methods, and at most once per upstream.
  function canRetry (req: http.IncomingMessage, res: ProxiedResponse): boolean {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') return false
    if (res[kHasBody]) return false
    return res[kTries] < pool.upstreams.length
  }

  function stats (): BalancerStats {
    return {
      strategy: pool.strategy,
      upstreams: pool.stats()
    }
  }

  const dashboard = createDashboard({
    hub: events,
    control: options.control,
    snapshot: () => ({ balancerId: config.balancerId, strategy: pool.strategy, stickyCookie: STICKY_COOKIE, upstreams: pool.views() }),
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
        pool.start()
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
    pool.stop()
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
    pool.close()
  }

  return {
    server,
    agent,
    get upstreams () { return pool.upstreams.map((u) => u.url) },
    listen,
    close,
    stats,
    setUpstreams: pool.setUpstreams,
    checkHealth: pool.checkHealth,
    events
  }
}

// Shared listeners: `this` is the emitter, so no per-request closure exists.

function onClientDrain (this: ProxiedResponse): void {
  clearTimeout(this[kStallTimer])
  this[kStallTimer] = undefined
  this[kAttempt]?.controller?.resume()
}

function onResponseClose (this: http.ServerResponse): void {
  const stalled = (this as ProxiedResponse)[kStallTimer]
  if (stalled !== undefined) clearTimeout(stalled)
  if (this.writableFinished) return
  // The client hung up before the proxied response was done: abort the
  // upstream request too, or it and its pooled connection would live on.
  // (http-proxy only listened for 'aborted' on the request, which does not
  // fire once a request body was fully read: http-proxy #1586.)
  const controller = (this as ProxiedResponse)[kAttempt]?.controller
  if (controller !== undefined && !controller.aborted) controller.abort(new Error('client closed'))
}

function urlOf (address: AddressInfo): string {
  let host = address.address
  if (host === '0.0.0.0') host = '127.0.0.1'
  else if (host === '::') host = '::1'
  if (host.includes(':')) host = `[${host}]`
  return `http://${host}:${address.port}`
}
