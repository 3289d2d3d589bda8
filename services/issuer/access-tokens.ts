import { randomBytes } from 'node:crypto'
import { SignJWT, compactVerify } from 'jose'
import { ACCESS_TOKEN_HEADER, expectedKid } from '../auth/jwt-header.ts'
import type { KeyRing } from './keys.ts'

export interface AccessTokenOptions {
  keys: KeyRing
  issuer: string
  audience: string
  /** ACCESS_TTL_SECONDS: every token's exp is this long after its iat. */
  ttlSeconds: number
}

export interface AccessTokens {
  /** A new access token for `user`, of refresh token family `family` (its `sid`), signed with the key signing now. */
  sign (user: string, family: string): Promise<{ token: string, expiresIn: number }>
  /**
   * The family (`sid`) of an access token this issuer signed with a key it still publishes,
   * its signature checked, its exp not: logout must work with an access token that has just
   * expired. Undefined for anything else.
   */
  familyOf (token: string): Promise<string | undefined>
}

export function createAccessTokens (options: AccessTokenOptions): AccessTokens {
  const { keys, issuer, audience, ttlSeconds } = options
  return {
    async sign (user, family) {
      const key = keys.signing()
      const now = Math.floor(Date.now() / 1000)
      // The header is exactly alg, typ and kid (what the app servers accept, jwt-header.ts); the
      // claims those they require, plus sid: the family, which logout revokes.
      const token = await new SignJWT({ sub: user, jti: randomBytes(16).toString('base64url'), sid: family })
        .setProtectedHeader({ ...ACCESS_TOKEN_HEADER, kid: key.kid })
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt(now)
        .setExpirationTime(now + ttlSeconds)
        .sign(key.privateKey)
      return { token, expiresIn: ttlSeconds }
    },
    async familyOf (token) {
      const kid = expectedKid(token, ACCESS_TOKEN_HEADER)
      const key = kid === undefined ? undefined : keys.byKid(kid)
      if (key === undefined) return undefined
      try {
        const { payload } = await compactVerify(token, key.publicKey, { algorithms: ['EdDSA'] })
        const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>
        if (claims.iss !== issuer || claims.aud !== audience || typeof claims.sid !== 'string' || claims.sid === '') return undefined
        return claims.sid
      } catch {
        return undefined
      }
    }
  }
}
