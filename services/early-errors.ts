import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { refuseAfterInFlight } from '../lib/refuse-after-in-flight.ts'

/**
 * The answers to requests refused before any hook runs, so before the error handler and the
 * response-headers and request-log plugins can see them. Fastify takes these two only as server
 * options (`frameworkErrors`, `clientErrorHandler`), so app.ts passes them there; they give the
 * same JSON shape, `x-served-by` and log line as every other answer.
 */

/** A URL Fastify cannot decode (GET /%zz): without this that 400 has no x-served-by and not our error shape. */
export function frameworkErrors (serverId: string): (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (err, request, reply) => {
    // No hook runs for these, the onResponse log line included: log it here, once.
    request.log.info({ method: request.method, url: request.url, statusCode: 400, code: err.code }, `${request.method} ${request.url} 400 ${err.code}`)
    reply.code(400).header('x-served-by', serverId)
      .send({ error: 'bad_request', message: err.message, servedBy: serverId })
  }
}

/**
 * What Node's parser refuses before Fastify sees a request (headers over 16 KiB, a malformed
 * request line, Content-Length with Transfer-Encoding): our JSON shape, then close. Fastify
 * calls it with `this` bound to the instance.
 */
export function clientErrorHandler (serverId: string): (this: FastifyInstance, err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Socket) => void {
  return function (err, socket) {
    if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
      socket.destroy()
      return
    }
    const [status, error] = err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request_header_fields_too_large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout'] : [400, 'bad_request']
    const body = JSON.stringify({ error, servedBy: serverId })
    // Behind a pipelined request still being answered, the refusal waits its turn (see the helper);
    // Node reports the rest of a refused connection's bytes as more errors, answered once.
    if (!refuseAfterInFlight(socket, `HTTP/1.1 ${status} ${error.replaceAll('_', ' ')}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-served-by: ${serverId}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`)) return
    this.log.info({ code: err.code, status }, 'refused a request the HTTP parser could not accept')
  }
}
