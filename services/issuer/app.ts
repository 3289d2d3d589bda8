import fastifyCookie from '@fastify/cookie'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { connectStore } from '../auth/redis-client.ts'
import { clientErrorHandler, frameworkErrors } from '../early-errors.ts'
import errorHandlerPlugin from '../plugins/error-handler.ts'
import jsonBodyPlugin from '../plugins/json-body.ts'
import loginThrottlePlugin from '../plugins/login-throttle.ts'
import requestLogPlugin from '../plugins/request-log.ts'
import responseHeadersPlugin from '../plugins/response-headers.ts'
import usersPlugin from '../plugins/users.ts'
import { createAccessTokens } from './access-tokens.ts'
import type { IssuerConfig } from './config.ts'
import type { IssuerContext } from './context.ts'
import { loadKeyRing, type KeyRing } from './keys.ts'
import { createIssuerMetrics } from './metrics.ts'
import { createRedisRefreshStore } from './refresh-store-redis.ts'
import { loginRoute } from './routes/login.ts'
import { opsRoutes } from './routes/ops.ts'
import { tokenRoutes } from './routes/tokens.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The issuer's keys (./keys.ts): its entry file rescans them on SIGHUP. Absent on an app server. */
    issuerKeys: KeyRing
  }
}

export interface BuildIssuerOptions {
  /** A pino logger (the entry file's) or fastify logger options; tests pass false. */
  logger?: FastifyBaseLogger | FastifyServerOptions['logger']
  /** The clock of the refresh tokens' lifetimes, the login counters and the keys' schedule (Date.now). */
  now?: () => number
}

// The keys directory is read again this often: a key written there (a rotation) is published
// within a second even without a SIGHUP, on every issuer that reads the directory.
const RESCAN_MS = 1000

/**
 * The issuer (jwt mode with JWT_SIGNING=eddsa): the one kind of process that holds private keys.
 * It logs users in with the app server's throttle and password check, gives short access tokens
 * signed with Ed25519 and rotating refresh tokens kept in Redis, and publishes its public keys at
 * /.well-known/jwks.json. A factory like buildApp: everything comes in `config`.
 */
export async function buildIssuer (config: IssuerConfig, options: BuildIssuerOptions = {}): Promise<FastifyInstance> {
  const logger = options.logger ?? false
  const app = Fastify({
    ...(isLoggerInstance(logger) ? { loggerInstance: logger } : { logger }),
    // Logins, refreshes and logouts are the only bodies, all small.
    bodyLimit: 16 * 1024,
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy,
    return503OnClosing: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    frameworkErrors: frameworkErrors(config.serverId),
    clientErrorHandler: clientErrorHandler(config.serverId)
  })
  const now = options.now ?? Date.now
  const metrics = createIssuerMetrics(config.serverId)

  const keys = await loadKeyRing({ dir: config.keysDir, retireAfterMs: (config.accessTtlSeconds + config.clockToleranceSeconds) * 1000, log: app.log, now })
  const rescan = setInterval(() => {
    keys.rescan().catch((err: unknown) => { app.log.warn({ err: (err as Error).message, dir: config.keysDir }, 'cannot read ISSUER_KEYS_DIR: keeping the keys held') })
  }, RESCAN_MS)
  rescan.unref()
  app.decorate('issuerKeys', keys)

  const store = await connectStore({ ...config.redis, log: app.log, name: 'refresh-tokens' })
  const refreshTokens = createRedisRefreshStore(store, {
    lifetimes: { absoluteMs: config.refreshTtlSeconds * 1000, idleMs: config.refreshIdleSeconds * 1000 },
    keyPrefix: config.redis.keyPrefix,
    onCommand: (command) => { metrics.sessionStoreCommands.inc({ command }) }
  })
  app.addHook('onClose', async () => {
    clearInterval(rescan)
    await refreshTokens.close()
  })

  // The app server's own plugins, given their settings (plugins/README.md).
  await app.register(usersPlugin)
  await app.register(loginThrottlePlugin, { limits: config.loginThrottle, redis: config.redis, now })
  await app.register(jsonBodyPlugin)
  await app.register(requestLogPlugin)
  await app.register(fastifyCookie)
  await app.register(responseHeadersPlugin, { serverId: config.serverId })
  await app.register(errorHandlerPlugin, { serverId: config.serverId })

  const issuer: IssuerContext = {
    config,
    keys,
    accessTokens: createAccessTokens({ keys, issuer: config.issuer, audience: config.audience, ttlSeconds: config.accessTtlSeconds }),
    refreshTokens,
    metrics,
    now
  }
  await app.register(loginRoute, { issuer })
  await app.register(tokenRoutes, { issuer })
  await app.register(opsRoutes, { issuer })
  return app
}

function isLoggerInstance (logger: unknown): logger is FastifyBaseLogger {
  return typeof logger === 'object' && logger !== null && typeof (logger as FastifyBaseLogger).child === 'function'
}
