import fastifyJwt from '@fastify/jwt'
import { randomBytes } from 'node:crypto'
import type { AuthenticatorFactory, RefusalReason, Verdict } from './authenticator.ts'
import { JTI_PATTERN, expectedKid } from './jwt-header.ts'
import { connectStore, type StoreClient } from './redis-client.ts'

type Verify = (token: string) => Record<string, unknown>

/**
 * Stateless tokens: any server holding the shared secrets can check one, with no lookup.
 * The payload is base64url, readable by anyone; the signature is an HMAC-SHA256 that proves
 * the payload is unchanged and was made by a holder of a secret. Nothing is encrypted.
 *
 * Done as RFC 8725 asks: one algorithm (HS256), chosen by the server, never by the token;
 * explicit typing (typ "JWT"); exp, iat, iss, aud, sub and jti required and checked with a
 * small explicit clock tolerance; `kid` picks one of the configured keys (JWT_SECRETS), so a
 * secret can be rotated without logging anyone out. Without revocation, logout cannot take a
 * token back; with JWT_REVOCATION=redis it records the jti until the token's exp.
 */
export const createJwtAuthenticator: AuthenticatorFactory = async ({ config, log, metrics, app }) => {
  const { keys, issuer, audience, clockToleranceSeconds, revocation } = config.jwt
  const signingKey = keys[0]
  if (signingKey === undefined) throw new Error('jwt mode needs at least one key (JWT_SECRET or JWT_SECRETS)')
  const toleranceMs = clockToleranceSeconds * 1000

  // @fastify/jwt once per key, each in a namespace named by its kid: its signer and verifier are
  // made once at registration, with the algorithm fixed here and every claim check switched on
  // (by default it accepts tokens with no exp and does not look at iss, aud or typ).
  for (const key of keys) {
    await app.register(fastifyJwt, {
      namespace: key.kid,
      secret: key.secret,
      // A number here is seconds: @fastify/jwt converts it, as jsonwebtoken did, for fast-jwt.
      sign: { algorithm: 'HS256', kid: key.kid, expiresIn: config.sessionTtlSeconds, iss: issuer, aud: audience },
      verify: {
        algorithms: ['HS256'],
        checkTyp: 'JWT',
        allowedIss: issuer,
        allowedAud: audience,
        requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub', 'jti'],
        clockTolerance: toleranceMs,
        cache: false
      }
    })
  }
  const jwt = app.jwt as unknown as Record<string, { sign: (payload: object) => string, verify: Verify }>
  const signer = jwt[signingKey.kid]
  if (signer === undefined) throw new Error(`@fastify/jwt did not register the key ${signingKey.kid}`)
  const sign = (payload: object): string => signer.sign(payload)
  const verifiers = new Map<string, Verify>(keys.map((key) => [key.kid, (token: string) => (jwt[key.kid] as { verify: Verify }).verify(token)]))

  const store: StoreClient | undefined = revocation === 'redis'
    ? await connectStore({ ...config.redis, log, name: 'jwt-revocation' })
    : undefined
  const revokedKey = (jti: string): string => `${config.redis.keyPrefix}revoked:${jti}`

  /** Signature, header and claims: everything that needs no store. */
  function check (token: string): { ok: true, claims: { sub: string, jti: string, exp: number } } | { ok: false, reason: RefusalReason } {
    const invalid = { ok: false, reason: 'invalid_token' } as const
    // The kid in the header picks the verifier; the algorithm is fixed by the server.
    const kid = expectedKid(token, { alg: 'HS256', typ: 'JWT' })
    const verifier = kid === undefined ? undefined : verifiers.get(kid)
    if (verifier === undefined) return invalid
    let claims: Record<string, unknown>
    try {
      claims = verifier(token)
    } catch (err) {
      // fast-jwt has a dozen error codes (bad signature, nbf, claim types...). All of them are
      // the client's problem, so all are a 401: only an expired token gets its own reason.
      return { ok: false, reason: (err as { code?: string }).code === 'FAST_JWT_EXPIRED' ? 'expired' : 'invalid_token' }
    }
    const { sub, jti, iat, exp } = claims
    if (typeof sub !== 'string' || sub === '' || typeof jti !== 'string' || !JTI_PATTERN.test(jti)) return invalid
    // A token "issued" in the future was not issued by us (fast-jwt does not look at iat).
    if (typeof iat !== 'number' || iat * 1000 > Date.now() + toleranceMs || typeof exp !== 'number') return invalid
    return { ok: true, claims: { sub, jti, exp } }
  }

  return {
    mode: 'jwt',
    async login (user) {
      const token = sign({ sub: user, jti: randomBytes(16).toString('base64url') })
      return { token, expiresIn: config.sessionTtlSeconds }
    },
    async verify (token): Promise<Verdict> {
      const result = check(token)
      if (!result.ok) return result
      if (store !== undefined) {
        metrics.sessionStoreCommands.inc({ command: 'exists' })
        const revoked = await store.run(async () => await store.redis.exists(revokedKey(result.claims.jti)))
        if (revoked === 1) return { ok: false, reason: 'revoked' }
      }
      return { ok: true, user: result.claims.sub }
    },
    async logout (token) {
      // Without revocation there is nothing to do: that is the trade-off (docs/modes.md, "What a JWT
      // does not give you"). With it, the jti is kept until the token could no longer pass anyway.
      if (store === undefined) return
      const result = check(token)
      if (!result.ok) return
      const seconds = Math.max(1, result.claims.exp + clockToleranceSeconds + 1 - Math.floor(Date.now() / 1000))
      metrics.sessionStoreCommands.inc({ command: 'set' })
      // With REDIS_WAIT_REPLICAS, the logout is answered only once the replicas hold the
      // revocation: a failover cannot bring the token back to life then.
      await store.replicated(async (connection) => await connection.set(revokedKey(result.claims.jti), '1', 'EX', seconds))
    },
    storeStatus: () => store?.status() ?? 'none',
    async close () {
      store?.close()
    }
  }
}
