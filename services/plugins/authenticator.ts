import fp from 'fastify-plugin'
import type { Authenticator } from '../auth/authenticator.ts'
import { authenticators } from '../auth/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The AUTH_MODE's authenticator (../auth/): logs in, verifies and logs out credentials. */
    authenticator: Authenticator
  }
}

export interface AuthenticatorPluginOptions {
  /** The clock the mode's timeouts read, in milliseconds since the epoch. */
  now: () => number
}

/** The one authenticator of this server, chosen by AUTH_MODE; closed (its store connection too) with the app. */
export default fp<AuthenticatorPluginOptions>(async (app, { now }) => {
  const { config, metrics } = app
  const createAuthenticator = await authenticators[config.mode]()
  app.decorate('authenticator', await createAuthenticator({ config, log: app.log, metrics, app, now }))
  app.addHook('onClose', async () => { await app.authenticator.close() })
}, { name: 'authenticator', dependencies: ['config', 'metrics'] })
