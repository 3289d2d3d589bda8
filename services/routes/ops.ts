import type { FastifyInstance } from 'fastify'

export async function opsRoutes (app: FastifyInstance): Promise<void> {
  const { config, authenticator, metrics } = app

  // Liveness: 200 while the process can answer, even with its store down, so the
  // balancer keeps routing and clients get the server's own 503 rather than a 502.
  app.get('/health', async () => ({
    status: 'ok',
    servedBy: config.serverId,
    mode: config.mode,
    store: authenticator.storeStatus()
  }))

  app.get('/metrics', async (request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}
