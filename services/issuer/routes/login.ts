import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { LoginBody, LoginRefusals, checkLogin, throttledBody } from '../../login-check.ts'
import { setTokenCookies, type IssuerContext } from '../context.ts'
import { hashRefreshToken, newFamilyId, newRefreshToken } from '../refresh-tokens.ts'

// The app server's /login answer, plus the refresh token (serialised from this: a field missing
// here would be dropped from the answer).
export const IssuedAnswer = Type.Object({
  token: Type.String(),
  tokenType: Type.Literal('Bearer'),
  mode: Type.Literal('jwt'),
  expiresIn: Type.Integer(),
  refreshToken: Type.String(),
  refreshExpiresIn: Type.Integer(),
  servedBy: Type.String()
})

/**
 * POST /login at the issuer: the app server's throttle and password check (../../login-check.ts),
 * then a new refresh token family, its first refresh token, and an access token of ACCESS_TTL_SECONDS.
 */
export const loginRoute: FastifyPluginAsyncTypebox<{ issuer: IssuerContext }> = async (app, { issuer }) => {
  const { config, accessTokens, refreshTokens, metrics, now } = issuer
  const { users, loginThrottle } = app

  app.post('/login', { schema: { body: LoginBody, response: { 200: IssuedAnswer, ...LoginRefusals } } }, async (request, reply) => {
    const { username, password } = request.body
    const check = await checkLogin({ loginThrottle, users, logins: metrics.logins }, username, password, request.ip, request.log)
    if (check.outcome === 'throttled') {
      return reply.code(429).header('retry-after', String(check.retryAfterSeconds)).send(throttledBody(check, config.serverId))
    }
    if (check.outcome === 'invalid_credentials') {
      return reply.code(401).send({ error: 'invalid_credentials', servedBy: config.serverId })
    }
    const family = newFamilyId()
    const refreshToken = newRefreshToken()
    try {
      await refreshTokens.create(family, check.user, hashRefreshToken(refreshToken), now())
    } catch (err) {
      // The refresh store is down: a login that could not be refreshed later is not given (503).
      metrics.logins.inc({ result: 'unavailable' })
      throw err
    }
    const access = accessTokens.sign(check.user, family)
    metrics.logins.inc({ result: 'ok' })
    request.username = check.user
    setTokenCookies(reply, access, { token: refreshToken, expiresIn: config.refreshTtlSeconds })
    return reply.send({ token: access.token, tokenType: 'Bearer', mode: 'jwt', expiresIn: access.expiresIn, refreshToken, refreshExpiresIn: config.refreshTtlSeconds, servedBy: config.serverId })
  })
}
