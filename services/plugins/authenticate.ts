import fastifyCookie from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { RefusalReason } from '../auth/authenticator.ts'

export const AUTH_COOKIE = 'auth'
/** How /login sets the credential's cookie, and cookie mode sets it again when it renews it (Max-Age aside). */
export const AUTH_COOKIE_OPTIONS = { httpOnly: true, sameSite: 'lax', path: '/' } as const

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler for protected routes: sets request.username, or answers 401 with a reason. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

/** The credential a client presents: `Authorization: Bearer <token>` first, else the login cookie. */
export function readCredential (request: FastifyRequest): { token: string } | { problem: RefusalReason } {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(header)
    return match?.[1] !== undefined ? { token: match[1] } : { problem: 'invalid_token' }
  }
  const cookie = request.cookies[AUTH_COOKIE]
  return cookie !== undefined && cookie !== '' ? { token: cookie } : { problem: 'missing_token' }
}

/**
 * A refused credential is a 401 with a reason and the server's name; a store that cannot
 * answer throws, and the error handler makes it a 503.
 */
async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { authenticator, metrics, config } = request.server
  const credential = readCredential(request)
  let reason: RefusalReason
  if ('token' in credential) {
    const started = process.hrtime.bigint()
    let verdict
    try {
      verdict = await authenticator.verify(credential.token)
    } catch (err) {
      metrics.authOutcomes.inc({ outcome: 'unavailable', reason: 'session_store_unavailable' })
      throw err
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      metrics.authDuration.observe(seconds)
      reply.header('server-timing', `auth;dur=${(seconds * 1000).toFixed(3)};desc="${authenticator.mode}"`)
    }
    if (verdict.ok) {
      request.username = verdict.user
      metrics.authOutcomes.inc({ outcome: 'ok', reason: 'none' })
      // Set however the credential came: a Bearer client that wants the idle timeout to slide
      // takes the new value from here too.
      if (verdict.renewed !== undefined) reply.setCookie(AUTH_COOKIE, verdict.renewed.token, { ...AUTH_COOKIE_OPTIONS, maxAge: verdict.renewed.expiresIn })
      return
    }
    reason = verdict.reason
  } else {
    reason = credential.problem
  }
  request.refusal = reason
  metrics.authOutcomes.inc({ outcome: 'unauthorized', reason })
  reply.code(401)
    .header('www-authenticate', reason === 'missing_token' ? 'Bearer realm="auth-cluster"' : `Bearer realm="auth-cluster", error="invalid_token", error_description="${reason}"`)
  await reply.send({ error: 'unauthorized', reason, servedBy: config.serverId })
  return reply
}

/** Who is asking: the credential from the Bearer header or the `auth` cookie, checked by the mode's authenticator. */
export default fp(async (app) => {
  await app.register(fastifyCookie)
  app.decorate('authenticate', authenticate)
}, { name: 'authenticate', dependencies: ['config', 'metrics', 'authenticator', 'request-log'] })
