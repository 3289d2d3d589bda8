import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { readCredential } from '../../plugins/authenticate.ts'
import { REFRESH_COOKIE, clearRefreshCookie, clearTokenCookies, setTokenCookies, type IssuerContext } from '../context.ts'
import { hashRefreshToken, isWellFormedRefreshToken, newRefreshToken, type RefreshRefusal } from '../refresh-tokens.ts'
import { IssuedAnswer } from './login.ts'

const Refused = Type.Object({ error: Type.Literal('unauthorized'), reason: Type.String(), servedBy: Type.String() })

/**
 * The refresh token a request carries: `{"refreshToken"}` in a JSON body, else the refresh
 * cookie (sent to /token/... only). A body of any other shape is a 400 naming the problem.
 */
function presentedRefreshToken (request: FastifyRequest): { token: string } | { problem: 'missing_token' } | { badBody: string } {
  const body = request.body as unknown
  if (body !== undefined && body !== null) {
    const keys = typeof body === 'object' && !Array.isArray(body) ? Object.keys(body) : undefined
    const token = (body as { refreshToken?: unknown }).refreshToken
    if (keys === undefined || keys.some((k) => k !== 'refreshToken') || (token !== undefined && typeof token !== 'string')) {
      return { badBody: 'the body must be {"refreshToken":"..."}, or empty to use the refresh cookie' }
    }
    if (typeof token === 'string' && token !== '') return { token }
  }
  const cookie = request.cookies[REFRESH_COOKIE]
  return cookie !== undefined && cookie !== '' ? { token: cookie } : { problem: 'missing_token' }
}

/** A 400 the error handler answers as every other: `{"error":"bad_request","message","servedBy"}`. */
function badRequest (message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 })
}

export const tokenRoutes: FastifyPluginAsyncTypebox<{ issuer: IssuerContext }> = async (app, { issuer }) => {
  const { config, accessTokens, refreshTokens, metrics, now } = issuer
  const { serverId } = config

  /**
   * POST /token/refresh: a new access token and a new refresh token for the current one, which is
   * retired in the same step. A retired one presented again revokes its whole family: 401
   * refresh_reused, and the family's newest token stops working too (RFC 9700 4.14.2).
   */
  app.post('/token/refresh', { schema: { response: { 200: IssuedAnswer, 401: Refused } } }, async (request, reply) => {
    const presented = presentedRefreshToken(request)
    if ('badBody' in presented) throw badRequest(presented.badBody)
    const refuse = async (reason: RefreshRefusal) => {
      metrics.refreshes.inc({ result: reason })
      request.log.info({ reason }, 'refresh refused')
      // A token that will never work again is not worth keeping in the browser.
      if (reason !== 'missing_token') clearRefreshCookie(reply)
      return await reply.code(401).send({ error: 'unauthorized', reason, servedBy: serverId })
    }
    if ('problem' in presented) return await refuse('missing_token')
    if (!isWellFormedRefreshToken(presented.token)) return await refuse('invalid_token')

    const next = newRefreshToken()
    let result
    try {
      result = await refreshTokens.rotate(hashRefreshToken(presented.token), hashRefreshToken(next), now())
    } catch (err) {
      metrics.refreshes.inc({ result: 'unavailable' })
      throw err
    }
    switch (result.outcome) {
      case 'rotated': {
        const access = accessTokens.sign(result.user, result.family)
        const refreshExpiresIn = Math.max(1, Math.floor((result.expiresAt - now()) / 1000))
        metrics.refreshes.inc({ result: 'ok' })
        request.username = result.user
        setTokenCookies(reply, access, { token: next, expiresIn: refreshExpiresIn })
        return await reply.send({ token: access.token, tokenType: 'Bearer', mode: 'jwt', expiresIn: access.expiresIn, refreshToken: next, refreshExpiresIn, servedBy: serverId })
      }
      case 'reused':
        // Two parties hold this family; which one is the thief cannot be told. Both log in again.
        request.log.warn({ user: result.user, family: result.family }, 'a retired refresh token was presented again: its family is revoked')
        return await refuse('refresh_reused')
      case 'revoked': return await refuse('revoked')
      case 'expired': return await refuse('expired')
      case 'unknown': return await refuse('invalid_token')
    }
  })

  /**
   * POST /logout: revokes the family of the refresh token the request carries (body or cookie),
   * or of its access token (Bearer or the auth cookie: its `sid`, signature checked, expired or
   * not), and clears both cookies. 204 whatever it found; 503 when the store cannot be told.
   */
  app.post('/logout', async (request, reply) => {
    const presented = presentedRefreshToken(request)
    if ('badBody' in presented) throw badRequest(presented.badBody)
    const access = readCredential(request)
    const family = 'token' in access ? accessTokens.familyOf(access.token) : undefined
    const refresh = 'token' in presented && isWellFormedRefreshToken(presented.token) ? presented.token : undefined
    try {
      if (refresh !== undefined) await refreshTokens.revokeByToken(hashRefreshToken(refresh))
      if (family !== undefined) await refreshTokens.revokeFamily(family)
    } catch (err) {
      metrics.logouts.inc({ result: 'unavailable' })
      throw err
    }
    metrics.logouts.inc({ result: refresh !== undefined || family !== undefined ? 'family' : 'none' })
    clearTokenCookies(reply)
    return await reply.code(204).send()
  })
}
