import fp from 'fastify-plugin'
import type { RefusalReason } from '../auth/authenticator.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set once the credential is accepted (or the password, at a login). */
    username?: string
    /** Set when the credential is refused, for the log line. */
    refusal?: RefusalReason
  }
}

/**
 * One readable line per request, in place of Fastify's two (app.ts switches those off): the
 * user, and the reason a credential or a body was refused, never the credential or the body.
 */
export default fp(async (app) => {
  // Declared up front so every request object has the same shape; set by the authenticate
  // plugin and the login routes, read here.
  app.decorateRequest('username', undefined)
  app.decorateRequest('refusal', undefined)
  app.addHook('onResponse', async (request, reply) => {
    // The balancer polls /health every second; those lines only at debug.
    const level = request.url === '/health' || request.url === '/metrics' ? 'debug' : 'info'
    const reason = request.refusal ?? (request.refusedFields !== undefined ? 'refused_fields' : undefined)
    request.log[level]({ method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100, user: request.username, reason, fields: request.refusedFields },
      `${request.method} ${request.url} ${reply.statusCode}${reason !== undefined ? ` ${reason}` : ''}`)
  })
}, { name: 'request-log', dependencies: ['json-body'] })
