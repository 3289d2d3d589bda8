import fp from 'fastify-plugin'
import { connectStore } from '../auth/redis-client.ts'
import type { AppConfig } from '../config.ts'
import { createMemoryThrottle, type LoginThrottle } from '../login-throttle.ts'
import { createRedisThrottle } from '../login-throttle-redis.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed logins per account and per client address (../login-throttle.ts). */
    loginThrottle: LoginThrottle
  }
}

export interface LoginThrottlePluginOptions {
  /** LOGIN_THROTTLE_*: the limits, the window, and where the counters live. */
  limits: AppConfig['loginThrottle']
  /** Where the counters live when `limits.store` is 'redis'. */
  redis: AppConfig['redis']
  /** The clock the in-process counters' windows read (a Redis store's windows are Redis's own). */
  now: () => number
}

/**
 * LOGIN_THROTTLE_STORE: in this process, or in Redis (the default when this server already uses
 * one), shared by every server. Its settings come as options, not from app.config, so that the
 * issuer (../issuer/) counts logins with the same code as the app server.
 */
export default fp<LoginThrottlePluginOptions>(async (app, { limits, redis, now }) => {
  const store = limits.store === 'redis'
    ? await connectStore({ ...redis, log: app.log, name: 'login-throttle' })
    : undefined
  app.decorate('loginThrottle', store === undefined
    ? createMemoryThrottle(limits, { now })
    : createRedisThrottle(limits, store, redis.keyPrefix))
  app.addHook('onClose', async () => { app.loginThrottle.close() })
}, { name: 'login-throttle' })
