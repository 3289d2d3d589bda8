import fp from 'fastify-plugin'
import { connectStore } from '../auth/redis-client.ts'
import { createMemoryThrottle, type LoginThrottle } from '../login-throttle.ts'
import { createRedisThrottle } from '../login-throttle-redis.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed logins per account and per client address (../login-throttle.ts). */
    loginThrottle: LoginThrottle
  }
}

export interface LoginThrottlePluginOptions {
  /** The clock the in-process counters' windows read (a Redis store's windows are Redis's own). */
  now: () => number
}

/** LOGIN_THROTTLE_STORE: in this process, or in Redis (the default when this server already uses one), shared by every server. */
export default fp<LoginThrottlePluginOptions>(async (app, { now }) => {
  const { config } = app
  const store = config.loginThrottle.store === 'redis'
    ? await connectStore({ url: config.redis.url, commandTimeoutMs: config.redis.commandTimeoutMs, log: app.log, name: 'login-throttle' })
    : undefined
  app.decorate('loginThrottle', store === undefined
    ? createMemoryThrottle(config.loginThrottle, { now })
    : createRedisThrottle(config.loginThrottle, store, config.redis.keyPrefix))
  app.addHook('onClose', async () => { app.loginThrottle.close() })
}, { name: 'login-throttle', dependencies: ['config'] })
