// What happens to a proxied request: the hot path. A client's request arrives from balancer.ts
// (admin paths and `*` are answered there), is refused at once if its Content-Length is over
// MAX_BODY_BYTES, or goes to an upstream its pool chooses. undici calls the Attempt's handler
// methods as the answer arrives; status and headers are copied into the client's response in one
// flat list, then the body chunk by chunk with back-pressure. A failed attempt is retried on the
// next upstream when nothing of it can have taken effect, or answered 502/503/504 in JSON.
//
// Per-request cost, kept on purpose: state on symbols on the response (proxied-response.ts), one
// handler object per attempt, listeners shared across requests (`this` is the emitter), the
// client's headers changed in place, a bodyless request sent with no body stream.
import type http from 'node:http'
import type { Logger } from 'pino'
import { Agent } from 'undici'
import type { Dispatcher } from 'undici'
import { countAnswer, noAnswers } from './answer-counts.ts'
import type { AnswerCounts } from './answer-counts.ts'
import type { EventHub } from './events.ts'
import { HOP_BY_HOP, connectionOptions, forwardedHeaders, originPath, passInterim } from './hop-headers.ts'
import type { Pool } from './pool.ts'
import { kAttempt, kHasBody, kSeen, kStallTimer, kStarted, kTries } from './proxied-response.ts'
import type { AttemptState, ProxiedResponse } from './proxied-response.ts'
import { GATEWAY_TIMEOUT_BODY, badGatewayBody, errorCode, sendJson } from './replies.ts'
import { ForwardedBody, answerTooLarge, bodySent, closeLingering, declaredTooLarge, endWhenBodyEnds, hasBody, lingering } from './request-body.ts'
import { createRequestWatcher } from './request-events.ts'
import { kPin, pinCookie } from './strategy.ts'
import type { Upstream } from './upstream.ts'
import { createUpstreamConnector } from './upstream-connector.ts'

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

export interface ProxyOptions {
  /** How long an upstream may stay silent (before its headers, between two chunks) or a client may take no byte. */
  proxyTimeoutMs: number
  /** The largest request body forwarded; a larger one is the balancer's own 413. */
  maxBodyBytes: number
  logger: Logger
  /** The dashboard's stream: requests are reported to it only while a page is open. */
  events: EventHub
}

export interface ReverseProxy {
  /** The one keep-alive undici agent every proxied request goes through, to every pool. */
  readonly agent: Agent
  /** The balancer's own answers to proxied requests, with no upstream to count them for (413, 503). */
  readonly ownAnswers: AnswerCounts
  /** Sends the client's request to an upstream of `pool`, and its answer back to the client. */
  forward (req: http.IncomingMessage, res: http.ServerResponse, pool: Pool): void
}

export function createProxy (options: ProxyOptions): ReverseProxy {
  const { proxyTimeoutMs, maxBodyBytes, logger, events } = options
  const agent = new Agent({ ...AGENT_OPTIONS, headersTimeout: proxyTimeoutMs, bodyTimeout: proxyTimeoutMs, connect: createUpstreamConnector({ timeout: proxyTimeoutMs }) })
  const watch = createRequestWatcher(events)
  const ownAnswers = noAnswers()

  function forward (req: http.IncomingMessage, res: http.ServerResponse, pool: Pool): void {
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
      countAnswer(ownAnswers, 413)
      return
    }
    dispatch(req, r, pool, undefined)
  }

  function dispatch (req: http.IncomingMessage, res: ProxiedResponse, pool: Pool, lastFailure: string | undefined): void {
    const upstream = pool.choose(req, res)
    if (upstream === undefined) {
      if (lastFailure === undefined) {
        sendJson(req, res, 503, pool.noHealthyBody)
        countAnswer(ownAnswers, 503)
      } else {
        // Every upstream of the pool failed this request: the 502 is the last one tried's.
        sendJson(req, res, 502, lastFailure)
        countAnswer(res[kAttempt]?.upstream.answers ?? ownAnswers, 502)
      }
      return
    }
    res[kTries]++
    upstream.requests++
    // A request without a body (most GETs) is complete already: it is sent with none instead
    // of an empty stream. A body is sent once (never retried), counted against the limit.
    const body = res[kHasBody] ? new ForwardedBody(req, res, maxBodyBytes, refuseBodyTooLarge) : null
    const attempt = new Attempt(res, pool, upstream, body)
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
      countAnswer(upstream.answers, 502)
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
    if (res.headersSent) {
      res.destroy()
    } else {
      answerTooLarge(res, maxBodyBytes)
      countAnswer(ownAnswers, 413)
    }
    const controller = attempt?.controller
    if (controller !== undefined && !controller.aborted) controller.abort(new Error('request body too large'))
    body.destroy()
  }

  // One attempt at one upstream: undici calls these as the answer arrives,
  // with no IncomingMessage or stream in between. The answer's status and
  // headers, then its body, are copied into the client's response.
  class Attempt implements Dispatcher.DispatchHandler, AttemptState {
    readonly res: ProxiedResponse
    /** The pool the upstream was chosen from: a retry chooses from it again. */
    readonly pool: Pool
    readonly upstream: Upstream
    /** The client's body on its way upstream, or null for a request without one. */
    readonly body: ForwardedBody | null
    controller: Dispatcher.DispatchController | undefined

    constructor (res: ProxiedResponse, pool: Pool, upstream: Upstream, body: ForwardedBody | null) {
      this.res = res
      this.pool = pool
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
      if (this.pool.sticky) {
        const pin = res[kPin]
        if (pin !== undefined) out.push('set-cookie', pinCookie(pin))
      }
      // Only while a dashboard watches: what its line needs from the upstream's answer.
      if (res[kStarted] !== undefined) res[kSeen] = { servedBy: headers['x-served-by'], authenticate: headers['www-authenticate'], serverTiming: headers['server-timing'] }
      try {
        // The status code only: Node writes the standard reason phrase. The
        // upstream's own phrase may hold bytes a parser lets through and
        // writeHead refuses (http-proxy copied it, and the throw killed the process).
        res.writeHead(statusCode, out)
        countAnswer(this.upstream.answers, statusCode)
      } catch (err) {
        // A header Node will not write (a byte it refuses in a value): the
        // upstream's answer cannot be passed on as it is. Answered before the
        // abort, so the abort's error finds the client answered and is ignored.
        this.upstream.failures++
        logger.warn({ err, upstream: this.upstream.url, method: res.req.method, url: res.req.url }, 'upstream answer has a header that cannot be passed on')
        sendJson(res.req, res, 502, badGatewayBody('invalid_upstream_header'))
        countAnswer(this.upstream.answers, 502)
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

  // The current attempt failed (onResponseError has set earlier attempts aside).
  function onProxyError (attempt: Attempt, err: Error): void {
    const { upstream, pool, res: r } = attempt
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
      countAnswer(upstream.answers, 504)
      return
    }
    if (CONNECT_CODES.has(code)) pool.markDown(upstream, code)
    const retry = canRetry(req, r, pool)
    logger.warn({ upstream: upstream.url, code, method: req.method, url: req.url, retry }, 'proxy error')
    if (retry) {
      dispatch(req, r, pool, badGatewayBody(code))
    } else {
      sendJson(req, r, 502, badGatewayBody(code))
      countAnswer(upstream.answers, 502)
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
  function canRetry (req: http.IncomingMessage, res: ProxiedResponse, pool: Pool): boolean {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') return false
    if (res[kHasBody]) return false
    return res[kTries] < pool.upstreams.length
  }

  return { agent, ownAnswers, forward }
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
