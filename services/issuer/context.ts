import type { FastifyReply } from 'fastify'
import { AUTH_COOKIE } from '../plugins/authenticate.ts'
import type { AccessTokens } from './access-tokens.ts'
import type { IssuerConfig } from './config.ts'
import type { KeyRing } from './keys.ts'
import type { IssuerMetrics } from './metrics.ts'
import type { RefreshTokenStore } from './refresh-tokens.ts'

/** What the issuer's routes work with, made once by buildIssuer and handed to each route plugin. */
export interface IssuerContext {
  config: IssuerConfig
  keys: KeyRing
  accessTokens: AccessTokens
  refreshTokens: RefreshTokenStore
  metrics: IssuerMetrics
  /** The clock of the refresh tokens' lifetimes and the keys' schedule (Date.now unless a test moves it). */
  now: () => number
}

/** The refresh token's cookie: sent back only to /token/... (the refresh), never with a read. */
export const REFRESH_COOKIE = 'refresh'
const REFRESH_COOKIE_OPTIONS = { httpOnly: true, sameSite: 'strict', path: '/token' } as const
// The access token's cookie is the app server's (`auth`, Path=/): the app servers read it as they
// read an hs256 token's, so a browser needs nothing new.
const ACCESS_COOKIE_OPTIONS = { httpOnly: true, sameSite: 'lax', path: '/' } as const

/** Both cookies of a login or a refresh, each living as long as its token. */
export function setTokenCookies (reply: FastifyReply, access: { token: string, expiresIn: number }, refresh: { token: string, expiresIn: number }): void {
  reply.setCookie(AUTH_COOKIE, access.token, { ...ACCESS_COOKIE_OPTIONS, maxAge: access.expiresIn })
  reply.setCookie(REFRESH_COOKIE, refresh.token, { ...REFRESH_COOKIE_OPTIONS, maxAge: refresh.expiresIn })
}

export function clearRefreshCookie (reply: FastifyReply): void {
  reply.clearCookie(REFRESH_COOKIE, REFRESH_COOKIE_OPTIONS)
}

export function clearTokenCookies (reply: FastifyReply): void {
  reply.clearCookie(AUTH_COOKIE, ACCESS_COOKIE_OPTIONS)
  clearRefreshCookie(reply)
}
