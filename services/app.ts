import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { AppConfig } from './config.ts'
import { SessionStoreUnavailableError } from './auth/authenticator.ts'
import authenticatePlugin from './plugins/authenticate.ts'
import authenticatorPlugin from './plugins/authenticator.ts'
import configPlugin from './plugins/config.ts'
import jsonBodyPlugin from './plugins/json-body.ts'
import loginThrottlePlugin from './plugins/login-throttle.ts'
import metricsPlugin from './plugins/metrics.ts'
import requestLogPlugin from './plugins/request-log.ts'
import responseHeadersPlugin from './plugins/response-headers.ts'
import usersPlugin from './plugins/users.ts'
import { authRoutes } from './routes/auth.ts'
import { feedRoutes } from './routes/feeds.ts'
import { opsRoutes } from './routes/ops.ts'
import { unexpectedFields } from './refused-fields.ts'
import { refuseAfterInFlight } from '../lib/refuse-after-in-flight.ts'

export interface BuildOptions {
  /** A pino logger (the entry file's) or fastify logger options; tests pass false. */
  logger?: FastifyBaseLogger | FastifyServerOptions['logger']
  /** The clock the sessions' timeouts and the login counters' windows read (Date.now); tests move their own instead of sleeping. */
  now?: () => number
}

/**
 * The app server as a factory: everything it needs comes in `config`, nothing is
 * read from the environment, so tests build it in any mode with `inject()`.
 */
export async function buildApp (config: AppConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const logger = options.logger ?? false
  const app = Fastify({
    ...(isLoggerInstance(logger) ? { loggerInstance: logger } : { logger }),
    // Logins are the only bodies: nothing legitimate comes near this.
    bodyLimit: 16 * 1024,
    // One readable line per request comes from the request-log plugin instead.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 200 },
    // request.ip is the client's address only if X-Forwarded-For comes from a proxy we know:
    // the balancer (on loopback by default; TRUST_PROXY). From anyone else it is ignored.
    trustProxy: config.trustProxy,
    // While closing, requests already on a connection are still served (with Connection: close),
    // not refused with a 503: that is what draining means.
    return503OnClosing: false,
    // Fastify's default coerces types: {"username":["alice"]} would log alice in and 123 would become "123".
    // It also drops fields a schema does not allow (removeAdditional) without a word.
    // A body of the wrong shape is a 400, as the contract says, naming what is wrong.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // A URL Fastify cannot decode (GET /%zz) is answered before any hook runs; without this
    // that 400 has no x-served-by and not our error shape.
    frameworkErrors: (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      // No hook runs for these, the onResponse log line included: log it here, once.
      request.log.info({ method: request.method, url: request.url, statusCode: 400, code: err.code }, `${request.method} ${request.url} 400 ${err.code}`)
      reply.code(400).header('x-served-by', config.serverId)
        .send({ error: 'bad_request', message: err.message, servedBy: config.serverId })
    },
    // What Node's parser refuses before Fastify sees a request (headers over 16 KiB, a
    // malformed request line, Content-Length with Transfer-Encoding): our JSON shape, then close.
    clientErrorHandler: (err: NodeJS.ErrnoException & { bytesParsed?: number }, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
        socket.destroy()
        return
      }
      const [status, error] = err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'request_header_fields_too_large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout'] : [400, 'bad_request']
      const body = JSON.stringify({ error, servedBy: config.serverId })
      // Behind a pipelined request still being answered, the refusal waits its turn (see the helper);
      // Node reports the rest of a refused connection's bytes as more errors, answered once.
      if (!refuseAfterInFlight(socket, `HTTP/1.1 ${status} ${error.replaceAll('_', ' ')}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-served-by: ${config.serverId}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`)) return
      app.log.info({ code: err.code, status }, 'refused a request the HTTP parser could not accept')
    }
  })

  const now = options.now ?? Date.now
  await app.register(configPlugin, { config })
  await app.register(metricsPlugin)
  await app.register(usersPlugin)
  await app.register(authenticatorPlugin, { now })
  await app.register(loginThrottlePlugin, { now })

  await app.register(jsonBodyPlugin)
  await app.register(authenticatePlugin)

  await app.register(responseHeadersPlugin)
  await app.register(requestLogPlugin)

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof SessionStoreUnavailableError) {
      request.log.warn({ err: err.cause instanceof Error ? err.cause.message : String(err.cause) }, 'session store unavailable')
      return reply.code(503).header('retry-after', '1').send({ error: 'session_store_unavailable', servedBy: config.serverId })
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err }, 'request failed')
      return reply.code(500).send({ error: 'internal_error', servedBy: config.serverId })
    }
    const refused = status === 400 ? unexpectedFields(err as Parameters<typeof unexpectedFields>[0], request) : undefined
    if (refused !== undefined) request.refusedFields = refused.fields
    return reply.code(status).send({ error: errorName(status), message: refused?.message ?? (err as Error).message, servedBy: config.serverId })
  })
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', message: `${request.method} ${request.url} is not a route`, servedBy: config.serverId })
  })

  await app.register(authRoutes)
  await app.register(feedRoutes)
  await app.register(opsRoutes)
  return app
}

function errorName (status: number): string {
  switch (status) {
    case 400: return 'bad_request'
    case 401: return 'unauthorized'
    case 404: return 'not_found'
    case 405: return 'method_not_allowed'
    case 413: return 'payload_too_large'
    case 414: return 'uri_too_long'
    case 415: return 'unsupported_media_type'
    case 429: return 'too_many_attempts'
    case 431: return 'request_header_fields_too_large'
    default: return 'client_error'
  }
}

function isLoggerInstance (logger: unknown): logger is FastifyBaseLogger {
  return typeof logger === 'object' && logger !== null && typeof (logger as FastifyBaseLogger).child === 'function'
}
