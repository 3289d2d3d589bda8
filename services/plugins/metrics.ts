import fp from 'fastify-plugin'
import { createMetrics, type Metrics } from '../metrics.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's own Prometheus registry and counters (../metrics.ts), served at /metrics. */
    metrics: Metrics
  }
}

/** A registry per app, labelled with the server and its mode. */
export default fp(async (app) => {
  app.decorate('metrics', createMetrics(app.config.serverId, app.config.mode))
}, { name: 'metrics', dependencies: ['config'] })
