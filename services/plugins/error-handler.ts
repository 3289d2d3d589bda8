import fp from 'fastify-plugin'
import { SessionStoreNotReplicatedError, SessionStoreUnavailableError } from '../auth/authenticator.ts'
import { unexpectedFields } from '../refused-fields.ts'

export interface ErrorHandlerOptions {
  /** SERVER_ID: every error names the server that made it. */
  serverId: string
}

/**
 * Every error and unknown route as JSON naming this server: a store that cannot answer is a 503
 * with Retry-After, a 5xx hides its message (it goes to the log), a 4xx keeps it. Requests
 * refused before routing are answered by ../early-errors.ts.
 */
export default fp<ErrorHandlerOptions>(async (app, { serverId }) => {
  app.setErrorHandler((err, request, reply) => {
    if (err instanceof SessionStoreNotReplicatedError) {
      // REDIS_WAIT_REPLICAS: made on the primary, not yet on enough replicas to outlive a failover.
      request.log.warn({ err: err.cause instanceof Error ? err.cause.message : String(err.cause) }, 'session store write not replicated')
      return reply.code(503).header('retry-after', '1').send({ error: 'session_store_not_replicated', servedBy: serverId })
    }
    if (err instanceof SessionStoreUnavailableError) {
      request.log.warn({ err: err.cause instanceof Error ? err.cause.message : String(err.cause) }, 'session store unavailable')
      return reply.code(503).header('retry-after', '1').send({ error: 'session_store_unavailable', servedBy: serverId })
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err }, 'request failed')
      return reply.code(500).send({ error: 'internal_error', servedBy: serverId })
    }
    const refused = status === 400 ? unexpectedFields(err as Parameters<typeof unexpectedFields>[0], request) : undefined
    if (refused !== undefined) request.refusedFields = refused.fields
    return reply.code(status).send({ error: errorName(status), message: refused?.message ?? (err as Error).message, servedBy: serverId })
  })
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', message: `${request.method} ${request.url} is not a route`, servedBy: serverId })
  })
}, { name: 'error-handler', dependencies: ['json-body'] })

function errorName (status: number): string {
  switch (status) {
    case 400: return 'bad_request'
    case 401: return 'unauthorized'
    case 404: return 'not_found'
    case 405: return 'method_not_allowed'
    case 413: return 'payload_too_large'
    case 414: return 'uri_too_long'
    case 415: return 'unsupported_media_type'
    case 429: return 'too_many_attempts'
    case 431: return 'request_header_fields_too_large'
    default: return 'client_error'
  }
}
