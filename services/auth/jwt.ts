import fastifyJwt from '@fastify/jwt'
import { randomBytes } from 'node:crypto'
import type { AuthenticatorFactory, Verdict } from './authenticator.ts'

// A token larger than this is refused before any parsing: no real token of ours comes near it.
const MAX_TOKEN_LENGTH = 4096

/**
 * Stateless tokens: any server holding the shared secret can check one, with no lookup.
 * The payload is base64url, readable by anyone; the signature is an HMAC-SHA256 that
 * proves the payload is unchanged and was made by a holder of the secret. Nothing is
 * encrypted. Logout cannot take a token back: it stays valid until `exp`.
 */
export const createJwtAuthenticator: AuthenticatorFactory = async ({ config, app }) => {
  const { secret, issuer, audience } = config.jwt
  await app.register(fastifyJwt, {
    secret,
    // A number here is seconds: @fastify/jwt converts it, as jsonwebtoken did, before fast-jwt sees it.
    sign: { algorithm: 'HS256', expiresIn: config.sessionTtlSeconds, iss: issuer, aud: audience },
    // Without these, @fastify/jwt accepts tokens with no exp and does not look at iss or aud.
    verify: { algorithms: ['HS256'], allowedIss: issuer, allowedAud: audience, requiredClaims: ['exp', 'iss', 'aud', 'sub'] }
  })

  return {
    mode: 'jwt',
    async login (user) {
      const token = app.jwt.sign({ sub: user, jti: randomBytes(16).toString('base64url') })
      return { token, expiresIn: config.sessionTtlSeconds }
    },
    async verify (token): Promise<Verdict> {
      if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'invalid_token' }
      // fast-jwt decodes the signature leniently, ignoring the unused low bits of its last
      // character, so four spellings of one token all pass. Only the one we issue is accepted.
      const signature = token.slice(token.lastIndexOf('.') + 1)
      if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) return { ok: false, reason: 'invalid_token' }
      try {
        const claims = app.jwt.verify<{ sub?: unknown }>(token)
        if (typeof claims.sub !== 'string' || claims.sub === '') return { ok: false, reason: 'invalid_token' }
        return { ok: true, user: claims.sub }
      } catch (err) {
        // fast-jwt has a dozen error codes (bad signature, alg, nbf, claim types...). All of them
        // are the client's problem, so all are a 401: only an expired token gets its own reason.
        return { ok: false, reason: (err as { code?: string }).code === 'FAST_JWT_EXPIRED' ? 'expired' : 'invalid_token' }
      }
    },
    async logout () {
      // Nothing to do: that is the trade-off. See README, "What a JWT does not give you".
    },
    storeStatus: () => 'none',
    async close () {}
  }
}
