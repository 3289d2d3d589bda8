import { randomBytes } from 'node:crypto'
import { createSigner, createVerifier } from 'fast-jwt'
import { ACCESS_TOKEN_HEADER, expectedKid } from '../auth/jwt-header.ts'
import type { IssuerKey, KeyRing } from './keys.ts'

export interface AccessTokenOptions {
  keys: KeyRing
  issuer: string
  audience: string
  /** ACCESS_TTL_SECONDS: every token's exp is this long after its iat. */
  ttlSeconds: number
}

export interface AccessTokens {
  /** A new access token for `user`, of refresh token family `family` (its `sid`), signed with the key signing now. */
  sign (user: string, family: string): { token: string, expiresIn: number }
  /**
   * The family (`sid`) of an access token this issuer signed with a key it still publishes,
   * its signature checked, its exp not: logout must work with an access token that has just
   * expired. Undefined for anything else.
   */
  familyOf (token: string): string | undefined
}

type Sign = (payload: Record<string, unknown>) => string
type Verify = (token: string) => Record<string, unknown>

/**
 * Access tokens with fast-jwt, the library that signs and verifies hs256 tokens here too: the
 * header is exactly alg EdDSA, typ at+jwt and the key's kid (what the app servers accept,
 * ../auth/jwt-header.ts); the claims are the ones they require, plus sid, the refresh token
 * family, which logout revokes. A signer and a verifier per key, made the first time it is used.
 */
export function createAccessTokens (options: AccessTokenOptions): AccessTokens {
  const { keys, issuer, audience, ttlSeconds } = options
  const signers = new WeakMap<IssuerKey, Sign>()
  const verifiers = new WeakMap<IssuerKey, Verify>()
  const signerFor = (key: IssuerKey): Sign => {
    let sign = signers.get(key)
    if (sign === undefined) {
      sign = createSigner({
        key: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        algorithm: 'EdDSA',
        kid: key.kid,
        // Over fast-jwt's default typ "JWT": the header stays alg, typ, kid and nothing else.
        header: { ...ACCESS_TOKEN_HEADER },
        iss: issuer,
        aud: audience,
        // fast-jwt takes milliseconds here, and writes exp in seconds.
        expiresIn: ttlSeconds * 1000
      }) as Sign
      signers.set(key, sign)
    }
    return sign
  }
  const verifierFor = (key: IssuerKey): Verify => {
    let verify = verifiers.get(key)
    if (verify === undefined) {
      verify = createVerifier({
        key: key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        algorithms: ['EdDSA'],
        checkTyp: ACCESS_TOKEN_HEADER.typ,
        allowedIss: issuer,
        allowedAud: audience,
        requiredClaims: ['sid'],
        ignoreExpiration: true,
        cache: false
      }) as Verify
      verifiers.set(key, verify)
    }
    return verify
  }
  return {
    sign (user, family) {
      const token = signerFor(keys.signing())({ sub: user, jti: randomBytes(16).toString('base64url'), sid: family })
      return { token, expiresIn: ttlSeconds }
    },
    familyOf (token) {
      const kid = expectedKid(token, ACCESS_TOKEN_HEADER)
      const key = kid === undefined ? undefined : keys.byKid(kid)
      if (key === undefined) return undefined
      try {
        const { sid } = verifierFor(key)(token)
        return typeof sid === 'string' && sid !== '' ? sid : undefined
      } catch {
        return undefined
      }
    }
  }
}
