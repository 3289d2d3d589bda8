import { jwtVerify } from 'jose'
import type { AuthenticatorFactory, Verdict } from './authenticator.ts'
import { createJwksCache } from './jwks-cache.ts'
import { ACCESS_TOKEN_HEADER, JTI_PATTERN, expectedKid } from './jwt-header.ts'
// How long a JWKS fetch may take: a request carrying an unknown kid waits at most this.
const JWKS_TIMEOUT_MS = 1000

/**
 * jwt mode with JWT_SIGNING=eddsa, on an app server: it verifies access tokens and issues none.
 * It holds no secret and no private key, only JWKS_URL: the issuer's public keys, fetched into
 * a cache (jwks-cache.ts) that keeps verifying while the issuer is away.
 *
 * Done as RFC 8725 asks, as the hs256 mode is: the algorithm comes from the key (Ed25519), never
 * from the token, so an HS256 token keyed with the public key (key confusion), `none`, and any
 * other alg are refused before a key is looked at; the header is exactly alg, typ ("at+jwt") and
 * a kid that names a key of the set, so an embedded jwk, a jku or x5u (never fetched), an x5c
 * or a crit is refused; exp, iat, iss, aud, sub and jti required and checked with the clock
 * tolerance; a token over 4096 characters is refused unread. jose's jwtVerify checks the
 * signature and the claims (measured: 75 to 90 µs a token here, against 5 µs for HS256: the
 * Ed25519 verification is most of it).
 */
export const createEddsaVerifier: AuthenticatorFactory = async ({ config, log, metrics }) => {
  const { issuer, audience, clockToleranceSeconds, jwks } = config.jwt
  if (jwks === undefined) throw new Error('jwt mode with JWT_SIGNING=eddsa needs JWKS_URL')
  const toleranceMs = clockToleranceSeconds * 1000
  const keys = createJwksCache({
    url: jwks.url,
    refreshMs: jwks.refreshSeconds * 1000,
    cooldownMs: jwks.cooldownSeconds * 1000,
    timeoutMs: JWKS_TIMEOUT_MS,
    log,
    onFetch: (reason, result) => { metrics.jwksFetches.inc({ reason, result }) }
  })
  await keys.start()
  const invalid = { ok: false, reason: 'invalid_token' } as const

  return {
    mode: 'jwt',
    async login () {
      // Never called: the app server registers no /login in this mode (app.ts); the issuer signs.
      throw new Error('this app server issues no tokens (JWT_SIGNING=eddsa): the issuer does')
    },
    async logout () {
      // Nothing here to end: the issuer's /logout revokes the refresh token family, and the
      // access token lives out its few minutes (ACCESS_TTL_SECONDS).
    },
    async verify (token): Promise<Verdict> {
      const kid = expectedKid(token, ACCESS_TOKEN_HEADER)
      if (kid === undefined) return invalid
      const key = await keys.keyFor(kid)
      if (key === undefined) return invalid
      let payload: Record<string, unknown>
      try {
        payload = (await jwtVerify(token, key, {
          algorithms: ['EdDSA'],
          typ: ACCESS_TOKEN_HEADER.typ,
          issuer,
          audience,
          requiredClaims: ['exp', 'iat', 'sub', 'jti'],
          clockTolerance: clockToleranceSeconds
        })).payload
      } catch (err) {
        // jose names what failed (signature, claim, type); all of it is the client's problem,
        // a 401, and only an expired token gets its own reason.
        return { ok: false, reason: (err as { code?: string }).code === 'ERR_JWT_EXPIRED' ? 'expired' : 'invalid_token' }
      }
      const { sub, jti, iat } = payload
      if (typeof sub !== 'string' || sub === '' || typeof jti !== 'string' || !JTI_PATTERN.test(jti)) return invalid
      // A token "issued" in the future was not issued by us (jose looks at iat only with maxTokenAge).
      if (typeof iat !== 'number' || iat * 1000 > Date.now() + toleranceMs) return invalid
      return { ok: true, user: sub }
    },
    // No store: a read asks nobody. The JWKS is reported on its own, 'down' while the last
    // fetch failed (tokens are still verified from the keys held).
    storeStatus: () => 'none',
    jwksStatus: () => keys.status(),
    async close () {
      keys.close()
    }
  }
}
