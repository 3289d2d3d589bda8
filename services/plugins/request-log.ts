import fp from 'fastify-plugin'

/**
 * One readable line per request, in place of Fastify's two (app.ts switches those off): the
 * user, and the reason a credential or a body was refused, never the credential or the body.
 */
export default fp(async (app) => {
  app.addHook('onResponse', async (request, reply) => {
    // The balancer polls /health every second; those lines only at debug.
    const level = request.url === '/health' || request.url === '/metrics' ? 'debug' : 'info'
    const reason = request.refusal ?? (request.refusedFields !== undefined ? 'refused_fields' : undefined)
    request.log[level]({ method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100, user: request.username, reason, fields: request.refusedFields },
      `${request.method} ${request.url} ${reply.statusCode}${reason !== undefined ? ` ${reason}` : ''}`)
  })
}, { name: 'request-log', dependencies: ['authenticate', 'json-body'] })
