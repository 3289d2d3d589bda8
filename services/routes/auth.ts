import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AUTH_MODES } from '../auth/modes.ts'
import { addressKey } from '../login-throttle.ts'
import { AUTH_COOKIE, AUTH_COOKIE_OPTIONS, readCredential } from '../plugins/authenticate.ts'

const LoginBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 256 })
}, { additionalProperties: false })

// The answers /login makes itself, serialised from these (fast-json-stringify) and typed by them:
// a field missing here would be dropped from the answer, so test/services/routes/answers.test.ts
// holds every body byte for byte. Errors (400, 413, 503...) come from the error handler, unschemed.
const LoginAnswers = {
  200: Type.Object({
    token: Type.String(),
    tokenType: Type.Literal('Bearer'),
    mode: Type.Enum(AUTH_MODES),
    expiresIn: Type.Integer(),
    servedBy: Type.String()
  }),
  401: Type.Object({ error: Type.Literal('invalid_credentials'), servedBy: Type.String() }),
  429: Type.Object({ error: Type.Literal('too_many_attempts'), message: Type.String(), retryAfter: Type.Integer(), servedBy: Type.String() })
}

export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { authenticator, users, metrics, config, loginThrottle } = app

  // The throttle's counters may live in Redis: a store it cannot reach fails the login (503),
  // never opens it, or an outage would be a free window for guessing passwords.
  async function counted<T> (pending: Promise<T>): Promise<T> {
    try {
      return await pending
    } catch (err) {
      metrics.logins.inc({ result: 'unavailable' })
      throw err
    }
  }

  app.post('/login', { schema: { body: LoginBody, response: LoginAnswers } }, async (request, reply) => {
    const { username, password } = request.body
    // request.ip is the balancer's X-Forwarded-For only when the balancer is a trusted proxy.
    const address = addressKey(request.ip)
    // Counted before the password is checked: attempts sent at the same moment each take their
    // place in the budget, so no more than the limit ever reach the check (a check-then-count
    // let every one of them through).
    const verdict = await counted(loginThrottle.count(username, address))
    if (!verdict.allowed) {
      metrics.logins.inc({ result: 'throttled' })
      request.log.warn({ scope: verdict.scope, address, retryAfter: verdict.retryAfterSeconds }, 'login throttled')
      return reply.code(429).header('retry-after', String(verdict.retryAfterSeconds))
        .send({ error: 'too_many_attempts', message: `too many failed logins for this ${verdict.scope}: try again in ${verdict.retryAfterSeconds} s`, retryAfter: verdict.retryAfterSeconds, servedBy: config.serverId })
    }
    const user = await users.verify(username, password)
    if (user === null) {
      metrics.logins.inc({ result: 'invalid_credentials' })
      // One answer for a wrong user and a wrong password: no hint of which users exist.
      return reply.code(401).send({ error: 'invalid_credentials', servedBy: config.serverId })
    }
    // Only failures use the budget. The user has proved who they are, so a store that fails
    // here does not stop the login: the attempt just stays counted until its window ends.
    await verdict.giveBack().catch((err: unknown) => {
      request.log.warn({ err: err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err) }, 'could not give a login attempt back')
    })
    let credential
    try {
      credential = await authenticator.login(user)
    } catch (err) {
      metrics.logins.inc({ result: 'unavailable' })
      throw err
    }
    metrics.logins.inc({ result: 'ok' })
    request.username = user
    return reply
      .setCookie(AUTH_COOKIE, credential.token, { ...AUTH_COOKIE_OPTIONS, maxAge: credential.expiresIn })
      .send({ token: credential.token, tokenType: 'Bearer', mode: authenticator.mode, expiresIn: credential.expiresIn, servedBy: config.serverId })
  })

  app.post('/logout', async (request, reply) => {
    const credential = readCredential(request)
    if ('token' in credential) await authenticator.logout(credential.token)
    return reply
      .clearCookie(AUTH_COOKIE, AUTH_COOKIE_OPTIONS)
      .code(204).send()
  })
}
