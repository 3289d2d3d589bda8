import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AUTH_MODES } from '../auth/modes.ts'
import { LoginBody, LoginRefusals, checkLogin, throttledBody } from '../login-check.ts'
import { AUTH_COOKIE, AUTH_COOKIE_OPTIONS, readCredential } from '../plugins/authenticate.ts'

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
  ...LoginRefusals
}

export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { authenticator, users, metrics, config, loginThrottle } = app

  app.post('/login', { schema: { body: LoginBody, response: LoginAnswers } }, async (request, reply) => {
    const { username, password } = request.body
    const check = await checkLogin({ loginThrottle, users, logins: metrics.logins }, username, password, request.ip, request.log)
    if (check.outcome === 'throttled') {
      return reply.code(429).header('retry-after', String(check.retryAfterSeconds)).send(throttledBody(check, config.serverId))
    }
    if (check.outcome === 'invalid_credentials') {
      // One answer for a wrong user and a wrong password: no hint of which users exist.
      return reply.code(401).send({ error: 'invalid_credentials', servedBy: config.serverId })
    }
    let credential
    try {
      credential = await authenticator.login(check.user)
    } catch (err) {
      metrics.logins.inc({ result: 'unavailable' })
      throw err
    }
    metrics.logins.inc({ result: 'ok' })
    request.username = check.user
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
