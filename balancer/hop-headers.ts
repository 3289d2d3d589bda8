// Which headers cross which hop. The balancer sits between two HTTP connections: what describes
// one connection stays on it (RFC 9110 7.6.1), and what a client says about where it came from
// (X-Forwarded-*) is replaced by what the balancer saw itself. Called once per proxied request
// and once per upstream answer: no copy of the headers, no allocation when nothing is dropped.
import type http from 'node:http'

// Hop-by-hop headers (RFC 9110 7.6.1) describe one connection, not the message:
// the client's Connection: close must not close a pooled upstream socket, and
// the upstream's Keep-Alive: timeout=72 is not ours to promise to the client.
// Node frames each side itself (Content-Length, or chunked when absent).
// Besides these fixed names, every header a message's own Connection header names is hop-by-hop
// too, and is dropped with it (RFC 9110 7.6.1): see connectionOptions().
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])
// undici frames the body itself (Content-Length, or chunked when absent) and
// refuses a Transfer-Encoding or Expect header; Node's server already answered
// any Expect: 100-continue on the client's hop.
const REQUEST_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding', 'expect'] as const

/**
 * The header names a Connection header lists besides `close` and `keep-alive` (lower-cased), or
 * undefined when there are none, as on nearly every message: RFC 9110 7.6.1 makes each of them
 * hop-by-hop, for a proxy to drop. (`Connection: close, X-Secret` must not take X-Secret past us.)
 */
export function connectionOptions (value: string | string[] | undefined): string[] | undefined {
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined
  let named: string[] | undefined
  for (const option of (typeof value === 'string' ? value : value.join(',')).split(',')) {
    const name = option.trim().toLowerCase()
    if (name === '' || name === 'close' || name === 'keep-alive') continue
    named ??= []
    named.push(name)
  }
  return named
}

// The headers sent upstream: the client's, less the hop-by-hop ones (the fixed list and those
// its Connection header names), and X-Forwarded-* set by us, replacing whatever the client sent
// (a retry sets the same values again). req.headers is changed in place: no copy per request.
export function forwardedHeaders (req: http.IncomingMessage): http.IncomingHttpHeaders {
  const headers = req.headers
  const host = headers.host
  const named = connectionOptions(headers.connection)
  for (let i = 0; i < REQUEST_HOP_BY_HOP.length; i++) {
    const name = REQUEST_HOP_BY_HOP[i] as string
    if (headers[name] !== undefined) delete headers[name]
  }
  if (named !== undefined) for (const name of named) delete headers[name]
  const socket = req.socket
  // For: the address of the peer of this TCP connection, the one fact about the client we know
  // first-hand. The app servers count failed logins under it (they trust it from us only).
  headers['x-forwarded-for'] = socket.remoteAddress ?? ''
  // Port: the port the client connected to, of this connection (not the Host header's, which
  // is the client's to write, and names no port at all on a default one). Behind a container's
  // port mapping it is the balancer's own port, not the host's.
  headers['x-forwarded-port'] = String(socket.localPort ?? '')
  // Proto: the scheme the client used to reach us. The balancer listens on plain HTTP only (no
  // TLS), so it is always http; a TLS terminator in front of it would have to say otherwise.
  headers['x-forwarded-proto'] = 'http'
  // Host: the authority the client asked for (its Host header, read before a Connection option
  // could drop it), for an app building absolute links. It is the client's claim, used for
  // nothing that decides access; empty when the request had none.
  headers['x-forwarded-host'] = host ?? ''
  return headers
}

// The path to send upstream: the request's own, or for an absolute-form
// target (`GET http://host/path`) its path and query.
export function originPath (url: string): string {
  if (url.charCodeAt(0) === 47 /* / */) return url
  try {
    const parsed = new URL(url)
    return parsed.pathname + parsed.search
  } catch {
    return url
  }
}

// An interim answer from the upstream (RFC 9110 15.2). 103 Early Hints carries Link headers a
// browser can start preloading from while the final answer is made (RFC 8297): passed on, with
// its Link headers only, to HTTP/1.1 clients (a 1xx must not go to an HTTP/1.0 one, RFC 9110
// 15.2). Any other 1xx is dropped: 102 Processing is obsolete, and Node's server has answered an
// Expect: 100-continue on the client's hop already. undici never hands us a 100: it takes an
// unasked 100 Continue for a broken answer and fails the request (client-h1.js, "bad response").
export function passInterim (res: http.ServerResponse, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
  const link = headers.link
  if (statusCode !== 103 || link === undefined || res.req.httpVersionMinor === 0) return
  try {
    res.writeEarlyHints({ link })
  } catch {
    // A Link value Node refuses to write: the hint is dropped, the final answer still follows.
  }
}
