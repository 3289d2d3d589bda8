// The balancer's own answers, always JSON: on a response (502, 503, 504, 404, 405, 400 for
// `*`), or written straight to a socket the HTTP server has given up on (400, 405, 408, 431).
import type http from 'node:http'
import type { Socket } from 'node:net'
import { refuseAfterInFlight } from '../lib/refuse-after-in-flight.ts'

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }
export const NO_HEALTHY_BODY = JSON.stringify({ error: 'no_healthy_upstream' })
export const NOT_FOUND_BODY = JSON.stringify({ error: 'not_found' })
export const METHOD_NOT_ALLOWED_BODY = JSON.stringify({ error: 'method_not_allowed' })
export const GATEWAY_TIMEOUT_BODY = JSON.stringify({ error: 'gateway_timeout' })
const ASTERISK_BODY = JSON.stringify({ error: 'bad_request', reason: 'asterisk_target_needs_options' })

// The reason is undici's error code (ECONNREFUSED, UND_ERR_SOCKET...). Which upstream failed goes
// to the log line, never to the client: an internal address is nobody's business outside.
export function badGatewayBody (reason: string): string {
  return JSON.stringify({ error: 'bad_gateway', reason })
}

export function sendJson (req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  // Drain whatever of the request body is left, so the connection can carry
  // the next request.
  if (!req.complete) req.resume()
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 405: 'Method Not Allowed', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }

/**
 * A whole response written straight to a socket the HTTP server has given up on, then closed;
 * after the responses still in flight on it, if any (pipelining). False when one was already
 * under way: Node's parser reports each later chunk of a refused connection again.
 */
export function endWithJson (socket: Socket, status: number, body: string): boolean {
  return refuseAfterInFlight(socket, `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

// `OPTIONS *` asks about the server as a whole, not a resource (RFC 9110 9.3.7),
// and to a client the balancer is the server: it answers for the cluster. (undici
// sends only origin-form paths, so it could not be passed on anyway.) Node's parser
// lets `*` through with any method; only OPTIONS means something with it.
export function answerAsterisk (req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === 'OPTIONS') {
    if (!req.complete) req.resume()
    res.writeHead(204, { allow: 'GET, HEAD, POST, OPTIONS', 'cache-control': 'no-store' })
    res.end()
  } else {
    sendJson(req, res, 400, ASTERISK_BODY)
  }
}

/** An error's `code` (undici's and Node's name for what went wrong), or 'UNKNOWN'. */
export function errorCode (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'UNKNOWN'
}
