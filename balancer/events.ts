import type http from 'node:http'
import { answerClassOf, noAnswers } from './answer-counts.ts'
import type { AnswerCounts } from './answer-counts.ts'

/** One proxied request, as the balancer saw it pass. */
export interface RequestEvent {
  /** When it finished, ms since the epoch. */
  t: number
  method: string
  /** The path without its query string (a query may carry secrets). */
  path: string
  status: number
  /** The app server's `x-served-by`, or null when the balancer answered itself (502/503/504). */
  servedBy: string | null
  /** The upstream URL it went to last, if any. */
  upstream: string | null
  /** From the first byte read to the last byte written, in ms. */
  ms: number
  /** Why it was refused or failed, as far as the headers say; null when accepted. */
  reason: string | null
  /** The auth step alone, as the app server timed it (`Server-Timing: auth;dur=`), in ms; null when it did not say. */
  authMs: number | null
}

/** Per server, how the requests that were not sent one by one ended, by answer class. */
export type Tally = Record<string, AnswerCounts>

export interface EventHub {
  /**
   * True while at least one page listens. The proxy reads this one field per
   * request and does nothing else for events while it is false.
   */
  readonly active: boolean
  /** Turns the request into a Server-Sent Events stream; `hello` is sent first. */
  subscribe (req: http.IncomingMessage, res: http.ServerResponse, hello: unknown): void
  /** Queues a request; queued ones go out together a few times a second. */
  request (event: RequestEvent): void
  /** Sends one event to every page now. */
  publish (type: string, data: unknown): void
  /** Ends every stream (a server cannot close while one is open). */
  close (): void
}

export interface EventHubOptions {
  /** How often queued requests are sent; default 100 ms. */
  flushMs?: number
  /** Requests sent one by one per flush; beyond it they are only counted. Default 200. */
  maxPerFlush?: number
  /** Pages at once; default 32. */
  maxSubscribers?: number
  /**
   * Added to every batch of requests: the balancer's totals at that moment (answers by class
   * per upstream), so a page's counts are the balancer's, whatever it missed or was not sent.
   */
  totals?: () => object
  /** A first page opened, or the last one closed: other threads report requests only while one is open. */
  onActive?: (active: boolean) => void
}

// A page that stops reading is dropped rather than buffered without end.
const MAX_BUFFERED_BYTES = 1 << 20
const HEARTBEAT_MS = 15_000

/**
 * Server-Sent Events for the dashboard. Requests are batched: under load a
 * page gets at most `maxPerFlush` requests per flush one by one, and a tally
 * per server of the rest, so its counters stay exact while the stream stays
 * bounded. With no page open there is no timer and no queue.
 */
export function createEventHub (options: EventHubOptions = {}): EventHub {
  const flushMs = options.flushMs ?? 100
  const maxPerFlush = options.maxPerFlush ?? 200
  const maxSubscribers = options.maxSubscribers ?? 32
  const totals = options.totals ?? (() => ({}))
  const onActive = options.onActive ?? (() => {})
  const subscribers = new Set<http.ServerResponse>()
  let queue: RequestEvent[] = []
  let omitted: Tally = {}
  let omittedCount = 0
  let flushTimer: NodeJS.Timeout | undefined
  let heartbeat: NodeJS.Timeout | undefined

  const hub: EventHub = {
    active: false,
    subscribe,
    request,
    publish,
    close
  }

  function setActive (): void {
    const was = hub.active
    ;(hub as { active: boolean }).active = subscribers.size > 0
    if (hub.active !== was) onActive(hub.active)
    if (subscribers.size > 0 && heartbeat === undefined) {
      // A comment line now and then: proxies and browsers drop streams that stay silent.
      heartbeat = setInterval(() => { send(': keep-alive\n\n') }, HEARTBEAT_MS)
      heartbeat.unref()
    } else if (subscribers.size === 0) {
      clearInterval(heartbeat)
      heartbeat = undefined
      clearTimeout(flushTimer)
      flushTimer = undefined
      queue = []
      omitted = {}
      omittedCount = 0
    }
  }

  function subscribe (req: http.IncomingMessage, res: http.ServerResponse, hello: unknown): void {
    if (subscribers.size >= maxSubscribers) {
      const body = JSON.stringify({ error: 'too_many_dashboards', max: maxSubscribers })
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    // The browser reconnects by itself; after a restart of the balancer, within a second.
    res.write(`retry: 1000\n\n${frame('hello', hello)}`)
    subscribers.add(res)
    res.on('close', () => {
      subscribers.delete(res)
      setActive()
    })
    req.socket.setNoDelay(true)
    setActive()
  }

  function request (event: RequestEvent): void {
    if (subscribers.size === 0) return
    if (queue.length < maxPerFlush) {
      queue.push(event)
    } else {
      omittedCount++
      const key = event.servedBy ?? 'balancer'
      const tally = omitted[key] ??= noAnswers()
      tally[answerClassOf(event.status)]++
    }
    flushTimer ??= setTimeout(flush, flushMs)
  }

  function flush (): void {
    flushTimer = undefined
    if (queue.length === 0 && omittedCount === 0) return
    const data = omittedCount === 0 ? { requests: queue, ...totals() } : { requests: queue, omitted, omittedCount, ...totals() }
    queue = []
    omitted = {}
    omittedCount = 0
    send(frame('requests', data))
  }

  function publish (type: string, data: unknown): void {
    if (subscribers.size === 0) return
    send(frame(type, data))
  }

  function send (text: string): void {
    for (const res of subscribers) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        res.destroy()
        continue
      }
      res.write(text)
    }
  }

  function close (): void {
    for (const res of subscribers) res.end()
    subscribers.clear()
    setActive()
  }

  return hub
}

/**
 * Why an answer is a refusal or a failure, from its headers alone: reading
 * bodies would cost the proxy a copy of every response. A 401 from an app
 * server says its reason in `WWW-Authenticate` (RFC 6750 `error_description`);
 * one without it asks for credentials; a 401 that names no scheme is a failed
 * login. A 503 that an app server signed is its session store being down.
 */
export function reasonOf (status: number, wwwAuthenticate: string | undefined, servedBy: string | null): string | null {
  if (status < 400) return null
  if (status === 401) {
    if (wwwAuthenticate === undefined) return 'invalid_credentials'
    const match = /error_description="([^"]*)"/.exec(wwwAuthenticate)
    return match?.[1] ?? 'missing_token'
  }
  if (servedBy === null) {
    if (status === 502) return 'bad_gateway'
    if (status === 503) return 'no_healthy_upstream'
    if (status === 504) return 'gateway_timeout'
  }
  if (status === 503) return 'session_store_unavailable'
  return null
}

function frame (type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`
}
