import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AUTH_MODES } from '../auth/modes.ts'

// Serialised from this (fast-json-stringify): test/services/routes/answers.test.ts holds the body byte for byte.
const HealthAnswers = {
  200: Type.Object({
    status: Type.Literal('ok'),
    servedBy: Type.String(),
    mode: Type.Enum(AUTH_MODES),
    store: Type.Enum(['up', 'down', 'none']),
    // jwt mode with JWT_SIGNING=eddsa only: absent in every other mode, so their answer is as before.
    signing: Type.Optional(Type.Literal('eddsa')),
    jwks: Type.Optional(Type.Enum(['up', 'down']))
  })
}

export const opsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, authenticator, metrics } = app

  // Liveness: 200 while the process can answer, even with its store down, so the
  // balancer keeps routing and clients get the server's own 503 rather than a 502.
  app.get('/health', { schema: { response: HealthAnswers } }, async () => ({
    status: 'ok' as const,
    servedBy: config.serverId,
    mode: config.mode,
    store: authenticator.storeStatus(),
    ...(authenticator.jwksStatus === undefined ? {} : { signing: 'eddsa' as const, jwks: authenticator.jwksStatus() })
  }))

  app.get('/metrics', async (request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}
