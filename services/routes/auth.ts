import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { AUTH_COOKIE, readCredential } from '../authenticate.ts'

const LoginBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ minLength: 1, maxLength: 256 })
}, { additionalProperties: false })

export async function authRoutes (app: FastifyInstance): Promise<void> {
  const { authenticator, users, metrics, config } = app

  app.post('/login', { schema: { body: LoginBody } }, async (request, reply) => {
    const { username, password } = request.body as { username: string, password: string }
    const user = await users.verify(username, password)
    if (user === null) {
      metrics.logins.inc({ result: 'invalid_credentials' })
      // One answer for a wrong user and a wrong password: no hint of which users exist.
      return reply.code(401).send({ error: 'invalid_credentials', servedBy: config.serverId })
    }
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
      .header('cache-control', 'no-store')
      .setCookie(AUTH_COOKIE, credential.token, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: credential.expiresIn })
      .send({ token: credential.token, tokenType: 'Bearer', mode: authenticator.mode, expiresIn: credential.expiresIn, servedBy: config.serverId })
  })

  app.post('/logout', async (request, reply) => {
    const credential = readCredential(request)
    if ('token' in credential) await authenticator.logout(credential.token)
    return reply
      .clearCookie(AUTH_COOKIE, { httpOnly: true, sameSite: 'lax', path: '/' })
      .code(204).send()
  })
}
