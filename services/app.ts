import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AppConfig } from './config.ts'
import { clientErrorHandler, frameworkErrors } from './early-errors.ts'
import authenticatePlugin from './plugins/authenticate.ts'
import authenticatorPlugin from './plugins/authenticator.ts'
import configPlugin from './plugins/config.ts'
import errorHandlerPlugin from './plugins/error-handler.ts'
import jsonBodyPlugin from './plugins/json-body.ts'
import loginThrottlePlugin from './plugins/login-throttle.ts'
import metricsPlugin from './plugins/metrics.ts'
import requestLogPlugin from './plugins/request-log.ts'
import responseHeadersPlugin from './plugins/response-headers.ts'
import usersPlugin from './plugins/users.ts'
import { authRoutes } from './routes/auth.ts'
import { feedRoutes } from './routes/feeds.ts'
import { opsRoutes } from './routes/ops.ts'

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
    // Requests refused before any hook runs: a URL Fastify cannot decode (GET /%zz), and what
    // Node's HTTP parser refuses. Fastify takes these only here; they answer like the error handler.
    frameworkErrors: frameworkErrors(config.serverId),
    clientErrorHandler: clientErrorHandler(config.serverId)
  })

  const now = options.now ?? Date.now
  await app.register(configPlugin, { config })
  await app.register(metricsPlugin)
  await app.register(usersPlugin)
  await app.register(authenticatorPlugin, { now })
  await app.register(loginThrottlePlugin, { limits: config.loginThrottle, redis: config.redis, now })

  await app.register(jsonBodyPlugin)
  await app.register(requestLogPlugin)
  await app.register(authenticatePlugin)

  await app.register(responseHeadersPlugin, { serverId: config.serverId })

  await app.register(errorHandlerPlugin, { serverId: config.serverId })

  // In jwt mode with JWT_SIGNING=eddsa the issuer logs users in and out: this server holds no
  // key to sign with, and answers /login and /logout as the unknown routes they are here.
  if (!(config.mode === 'jwt' && config.jwt.signing === 'eddsa')) await app.register(authRoutes)
  await app.register(feedRoutes)
  await app.register(opsRoutes)
  return app
}

function isLoggerInstance (logger: unknown): logger is FastifyBaseLogger {
  return typeof logger === 'object' && logger !== null && typeof (logger as FastifyBaseLogger).child === 'function'
}
