// How the balancer's undici agent opens its connections to the app servers: undici's own
// connector, and one change to every socket it opens, so an upstream's early answer is not
// lost to the reset that follows it.
//
// An upstream that refuses a request body early (a 413 over its own limit, a 401) answers, then
// closes its socket with our bytes still unread; its kernel then resets the connection. Our next
// write of body bytes fails with EPIPE or ECONNRESET, and Node destroys a socket on a write error
// at once: the answer that arrived before the reset, still in our kernel's receive buffer, is
// never read, and the client got a 502 where the app had said 413 (issue 10: 2 MB logins, five
// 502s in five; the same in Node's own client: nodejs/node#12339, #54366).
//
// So a write that fails with EPIPE or ECONNRESET is reported to the stream as done: the bytes had
// nowhere to go, and nothing is lost by not sending them. The read side then tells what happened:
// the answer the upstream gave before it closed (undici reads it as any other), followed by the
// end of the connection; or, if it gave none, just the end, which undici reports as a failure
// ("other side closed") like before. Only write errors are treated so, and only these two codes,
// which say the peer is gone for good. (http-proxy users patch _write the same way:
// http-party/node-http-proxy#1677.)
import type { Socket } from 'node:net'
import { buildConnector } from 'undici'

type WriteCallback = (error?: Error | null) => void

const kOnWrite = Symbol('upstream.onWrite')
const kTolerantOnWrite = Symbol('upstream.tolerantOnWrite')

interface TolerantSocket extends Socket {
  /** The stream's own write callback (the same function for every write), and its tolerant wrapper. */
  [kOnWrite]?: WriteCallback
  [kTolerantOnWrite]?: WriteCallback
}

/** undici's connector (the same options it would build from), with write resets left to the read side. */
export function createUpstreamConnector (options: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector(options)
  return function connectUpstream (connectOptions, callback) {
    connect(connectOptions, (err, socket) => {
      if (err === null) leaveWriteResetsToReads(socket as TolerantSocket)
      // The callback's two shapes are a tuple type; pass them on as they came.
      ;(callback as (err: Error | null, socket: Socket | null) => void)(err, socket)
    })
  }
}

function leaveWriteResetsToReads (socket: TolerantSocket): void {
  // _write and _writev are the Writable implementer's interface, called with the stream's own
  // onwrite callback; net.Socket's versions write to the handle and call it with the error.
  const write = socket._write
  const writev = socket._writev
  socket._write = function (chunk: unknown, encoding: BufferEncoding, callback: WriteCallback) {
    write.call(this, chunk, encoding, tolerant(this as TolerantSocket, callback))
  }
  if (writev !== undefined) {
    socket._writev = function (chunks: Array<{ chunk: unknown, encoding: BufferEncoding }>, callback: WriteCallback) {
      writev.call(this, chunks, tolerant(this as TolerantSocket, callback))
    }
  }
}

// One wrapper per socket, not per write: the callback Writable passes is the same every time.
function tolerant (socket: TolerantSocket, callback: WriteCallback): WriteCallback {
  if (socket[kOnWrite] !== callback || socket[kTolerantOnWrite] === undefined) {
    socket[kOnWrite] = callback
    socket[kTolerantOnWrite] = (error) => {
      const code = (error as NodeJS.ErrnoException | null | undefined)?.code
      callback(code === 'EPIPE' || code === 'ECONNRESET' ? null : error)
    }
  }
  return socket[kTolerantOnWrite]
}
