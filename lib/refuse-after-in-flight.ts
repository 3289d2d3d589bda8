// How the app server and the balancer answer a request Node's HTTP parser refused ('clientError'):
// a raw response written to the socket, then the connection closed. On a connection that carries
// more than one request at once (HTTP/1.1 pipelining, RFC 9112 9.3.2), the refused request may
// come behind one whose response is still being made: a login waiting for its upstream, or its
// password hash. Written at once, the refusal would be the first answer on the wire and the
// client would read it as the login's (responses go in the order of the requests), and the
// login's own answer would be lost with the connection. So it waits for the responses in
// flight, then goes out.
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

const kRefusal = Symbol('refusal')

// Node's HTTP server keeps the response being written on the socket as `_httpMessage` (it has
// since Node 0.x; its own clientError default uses it the same way), and hands the socket to the
// next pipelined response in the 'finish' of the one before.
interface ServerSocket extends Socket {
  _httpMessage?: ServerResponse | null
  [kRefusal]?: string
}

/**
 * Writes `rawResponse` (a whole response, `Connection: close` included) and closes, once no
 * response is in flight on the socket. Node's parser reports every later chunk on the socket
 * as another error: only the first refusal counts. Returns false when one was already under way.
 */
export function refuseAfterInFlight (socket: Socket, rawResponse: string): boolean {
  const s = socket as ServerSocket
  if (s[kRefusal] !== undefined) return false
  s[kRefusal] = rawResponse
  socket.on('error', ignore)
  writeWhenIdle(s)
  return true
}

function writeWhenIdle (socket: ServerSocket): void {
  if (socket.destroyed) return
  const inFlight = socket._httpMessage
  // Only a response to a request received whole is waited for: the parser reads requests in
  // order, so when the one in flight is incomplete, the refused bytes are its own body (a bad
  // chunk), and its answer will never come; refused at once, its response goes with the socket.
  if (inFlight != null && !inFlight.destroyed && inFlight.req.complete) {
    // 'close' comes after 'finish' (by then Node has handed the socket to the next one) and
    // when the response is cut off; either way, look again.
    inFlight.once('close', () => { writeWhenIdle(socket) })
    return
  }
  const refusal = socket[kRefusal]
  if (socket.writable && refusal !== undefined) socket.end(refusal)
  else socket.destroy()
}

function ignore (): void {}
