import fp from 'fastify-plugin'
import type { AppConfig } from '../config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated configuration this server was built with (config.ts); nothing reads the environment after it. */
    config: AppConfig
  }
}

export interface ConfigPluginOptions { config: AppConfig }

/** The configuration, for every plugin and route that needs it. */
export default fp<ConfigPluginOptions>(async (app, { config }) => {
  app.decorate('config', config)
}, { name: 'config' })
