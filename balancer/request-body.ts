// A client's request body on its way to an upstream, counted against MAX_BODY_BYTES; and the
// balancer's own 413 for a body over the limit. Only requests with a body come here: a bodyless
// GET (the hot path) never does.
//
// undici is not given the client's IncomingMessage itself, as it was at first: it destroys the
// body stream it was given when the upstream request ends before the body does (the upstream
// answered early, or failed), and destroying an unfinished IncomingMessage destroys the client's
// socket, and the answer meant for the client with it. It gets this stream in between, which
// also counts the bytes.
import type http from 'node:http'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'

const kBody = Symbol('balancer.requestBody')
const kDropping = Symbol('balancer.droppingBody')
const kLingerTimer = Symbol('balancer.lingerTimer')
const kLingerResponse = Symbol('balancer.lingerResponse')

type SourceRequest = http.IncomingMessage & { [kBody]: ForwardedBody }
type LingeringResponse = http.ServerResponse & { [kLingerTimer]?: NodeJS.Timeout }
type LingeringRequest = http.IncomingMessage & { [kLingerResponse]?: http.ServerResponse }

// After its 413 the balancer closes the connection, but first reads and drops what the client
// is still sending, for at most this long. Closed at once, the client's next bytes would meet a
// reset, and a client still writing its body can lose the 413 to it before reading it: RFC 9112
// 9.6 (close in stages: half-close, keep reading until the client is done). nginx's lingering
// close does the same, for up to 5 s of silence (lingering_timeout) and 30 s in all.
const LINGER_MS = 2000

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }

export class ForwardedBody extends Readable {
  readonly source: http.IncomingMessage
  /** The client's response: the balancer answers 413 on it when the limit is passed. */
  readonly res: http.ServerResponse
  readonly limit: number
  /** Bytes received from the client so far, forwarded or dropped. */
  received: number
  /** Called once, when the body passes the limit. */
  readonly onTooLarge: (body: ForwardedBody) => void
  tooLarge: boolean

  constructor (source: http.IncomingMessage, res: http.ServerResponse, limit: number, onTooLarge: (body: ForwardedBody) => void) {
    super()
    this.source = source
    this.res = res
    this.limit = limit
    this.received = 0
    this.onTooLarge = onTooLarge
    this.tooLarge = false
    ;(source as SourceRequest)[kBody] = this
    source.on('data', onSourceData)
    source.on('end', onSourceEnd)
  }

  override _read (): void {
    this.source.resume()
  }

  override _destroy (err: Error | null, callback: (error?: Error | null) => void): void {
    // The upstream request is over before the client's body is: undici destroys its body when
    // the upstream answered early, or failed. The rest of the body is read and dropped (still
    // counted against the limit), so the connection can carry the client's next request.
    if (!this.source.complete && !this.tooLarge) {
      ;(this.source.socket as Socket & { [kDropping]?: boolean })[kDropping] = true
      this.source.resume()
    }
    callback(err)
  }
}

/** Whether a request has a body: a Content-Length other than 0, or a Transfer-Encoding (RFC 9112 6.3). */
export function hasBody (headers: http.IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined
}

/** Whether a request's Content-Length says more than `limit` bytes (Node's parser has checked it is digits). */
export function declaredTooLarge (headers: http.IncomingHttpHeaders, limit: number): boolean {
  const length = headers['content-length']
  return length !== undefined && Number(length) > limit
}

/** Whether the client's whole body went upstream, its end included. */
export function bodySent (body: ForwardedBody): boolean {
  return body.readableEnded
}

/**
 * Whether the request on this connection was answered before its body had all arrived, and the
 * rest is being dropped: Node's request timeout must not then write a 408 as a second answer.
 */
export function answeredBeforeBodyEnded (socket: Socket): boolean {
  return (socket as Socket & { [kDropping]?: boolean })[kDropping] === true
}

/**
 * The balancer's 413 for a body over the limit, `{"error":"payload_too_large","limit"}`, then the
 * connection closed: nothing more of the body is forwarded, and what the client still sends is
 * dropped, for LINGER_MS at most, before the close (see there).
 */
export function answerTooLarge (res: http.ServerResponse, limit: number): void {
  const req = res.req
  const body = JSON.stringify({ error: 'payload_too_large', limit })
  res.writeHead(413, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body), connection: 'close' })
  if (req.complete) {
    res.end(body)
    return
  }
  // The whole answer goes out now (its Content-Length tells the client it is complete); ending
  // the response, which makes Node close the connection, waits for the client to finish.
  res.write(body)
  req.resume()
  endWhenBodyEnds(res)
}

/**
 * Ends a response once the client's request body has all arrived, or after LINGER_MS. For an
 * answer given before the body ended (the balancer's 413, an upstream's early answer) on a
 * connection that closes after it (the client said Connection: close, or HTTP/1.0): Node closes
 * the socket as soon as the response ends, and the client, still sending, meets a reset that can
 * cost it the answer (RFC 9112 9.6; the same race as upstream-connector.ts, on the client's side).
 * What arrives meanwhile is dropped (the caller makes sure the body is being read).
 */
export function endWhenBodyEnds (res: http.ServerResponse): void {
  const req = res.req
  if (req.complete) {
    res.end()
    return
  }
  ;(req as LingeringRequest)[kLingerResponse] = res
  req.once('end', onLingerSourceEnd)
  ;(res as LingeringResponse)[kLingerTimer] = setTimeout(endLinger, LINGER_MS, res)
}

/**
 * Closes the connection of a request already answered whose body is still arriving, in the
 * same stages: our side first, then, after LINGER_MS of reading and dropping, the rest.
 */
export function closeLingering (req: http.IncomingMessage): void {
  const socket = req.socket
  socket.end()
  req.resume()
  const timer = setTimeout(destroySocket, LINGER_MS, socket)
  socket.once('close', () => { clearTimeout(timer) })
}

function destroySocket (socket: Socket): void {
  socket.destroy()
}

/** Whether a response is complete but held open by endWhenBodyEnds. */
export function lingering (res: http.ServerResponse): boolean {
  return !res.writableEnded && (res as LingeringResponse)[kLingerTimer] !== undefined
}

function onLingerSourceEnd (this: LingeringRequest): void {
  const res = this[kLingerResponse]
  if (res !== undefined) endLinger(res)
}

function endLinger (res: http.ServerResponse): void {
  clearTimeout((res as LingeringResponse)[kLingerTimer])
  if (!res.writableEnded && !res.destroyed) res.end()
}

// Shared listeners (`this` is the client's request): no closure per request.

function onSourceData (this: SourceRequest, chunk: Buffer): void {
  const body = this[kBody]
  body.received += chunk.length
  if (body.tooLarge) return // refused already: dropped while the connection lingers
  if (body.received > body.limit) {
    body.tooLarge = true
    this.pause()
    body.onTooLarge(body)
    return
  }
  if (body.destroyed) return // dropped: see _destroy
  if (!body.push(chunk)) this.pause() // back-pressure: _read resumes it
}

function onSourceEnd (this: SourceRequest): void {
  const body = this[kBody]
  ;(this.socket as Socket & { [kDropping]?: boolean })[kDropping] = false
  if (!body.destroyed) body.push(null)
}
