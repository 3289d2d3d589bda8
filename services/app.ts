import fastifyCookie from '@fastify/cookie'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { AppConfig } from './config.ts'
import { authenticators } from './auth/index.ts'
import { SessionStoreUnavailableError, type Authenticator } from './auth/authenticator.ts'
import { createMetrics, type Metrics } from './metrics.ts'
import { createUserStore, type UserStore } from './users.ts'
import { authRoutes } from './routes/auth.ts'
import { feedRoutes } from './routes/feeds.ts'
import { opsRoutes } from './routes/ops.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig
    authenticator: Authenticator
    users: UserStore
    metrics: Metrics
  }
}

export interface BuildOptions {
  /** A pino logger (the entry file's) or fastify logger options; tests pass false. */
  logger?: FastifyBaseLogger | FastifyServerOptions['logger']
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
    // One readable line per request comes from the onResponse hook below instead.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 200 },
    // Fastify's default coerces types: {"username":["alice"]} would log alice in and 123 would become "123".
    // A body of the wrong shape is a 400, as the contract says.
    ajv: { customOptions: { coerceTypes: false } },
    // A URL Fastify cannot decode (GET /%zz) is answered before any hook runs; without this
    // that 400 has no x-served-by and not our error shape.
    frameworkErrors: (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      reply.code(400).header('x-served-by', config.serverId)
        .send({ error: 'bad_request', message: err.message, servedBy: config.serverId })
    }
  })

  app.decorate('config', config)
  app.decorate('metrics', createMetrics(config.serverId, config.mode))
  app.decorate('users', await createUserStore())
  const createAuthenticator = await authenticators[config.mode]()
  app.decorate('authenticator', await createAuthenticator({ config, log: app.log, metrics: app.metrics, app }))
  app.addHook('onClose', async () => app.authenticator.close())

  await app.register(fastifyCookie)
  // Declared up front so every request object has the same shape.
  app.decorateRequest('username', undefined)
  app.decorateRequest('refusal', undefined)

  // Every answer says which server made it: the demo is about exactly that.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-served-by', config.serverId)
  })
  app.addHook('onResponse', async (request, reply) => {
    // The balancer polls /health every second; those lines only at debug.
    const level = request.url === '/health' || request.url === '/metrics' ? 'debug' : 'info'
    request.log[level]({ method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100, user: request.username, reason: request.refusal },
      `${request.method} ${request.url} ${reply.statusCode}${request.refusal !== undefined ? ` ${request.refusal}` : ''}`)
  })

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
    return reply.code(status).send({ error: errorName(status), message: (err as Error).message, servedBy: config.serverId })
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
    case 415: return 'unsupported_media_type'
    default: return 'client_error'
  }
}

function isLoggerInstance (logger: unknown): logger is FastifyBaseLogger {
  return typeof logger === 'object' && logger !== null && typeof (logger as FastifyBaseLogger).child === 'function'
}
