import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { IssuerContext } from '../context.ts'

// Serialised from these: only the fields named here can leave, so no private part (`d`) of a
// key can ever reach the JWKS, whatever the key objects hold.
const PublicKey = Type.Object({
  kid: Type.String(),
  kty: Type.Literal('OKP'),
  crv: Type.Literal('Ed25519'),
  x: Type.String(),
  alg: Type.Literal('EdDSA'),
  use: Type.Literal('sig')
})
const JwksAnswer = Type.Object({ keys: Type.Array(PublicKey) })
const HealthAnswer = Type.Object({
  status: Type.Literal('ok'),
  servedBy: Type.String(),
  role: Type.Literal('issuer'),
  store: Type.Enum(['up', 'down']),
  signing: Type.String(),
  keys: Type.Array(Type.String())
})

export const opsRoutes: FastifyPluginAsyncTypebox<{ issuer: IssuerContext }> = async (app, { issuer }) => {
  const { config, keys, refreshTokens, metrics } = issuer

  /**
   * The public keys (RFC 7517 5): every key not retired, the one about to sign included, so an
   * app server has it before any token does. Cacheable but revalidated (no-cache): a cache that
   * kept the set past the app servers' refresh interval would hide a new key past the moment it
   * starts signing.
   */
  app.get('/.well-known/jwks.json', { schema: { response: { 200: JwksAnswer } } }, async (request, reply) => {
    return await reply.type('application/jwk-set+json; charset=utf-8').header('cache-control', 'no-cache')
      .send({ keys: keys.published().map((key) => key.jwk) })
  })

  // Liveness, as the app server's: 200 while it can answer, with its store up or down (its
  // logins and refreshes are then 503s of its own rather than the balancer's 502s).
  app.get('/health', { schema: { response: { 200: HealthAnswer } } }, async () => ({
    status: 'ok' as const,
    servedBy: config.serverId,
    role: 'issuer' as const,
    store: refreshTokens.status(),
    signing: keys.signing().kid,
    keys: keys.published().map((key) => key.kid)
  }))

  app.get('/metrics', async (request, reply) => {
    const published = keys.published().length
    metrics.keys.set({ state: 'signing' }, 1)
    metrics.keys.set({ state: 'published' }, published - 1)
    return await reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}
