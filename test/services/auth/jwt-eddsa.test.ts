import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../../lib/config.ts'
import { loadServerConfig } from '../../../services/config.ts'
import { buildEddsaApp, issuerLogin, startTestIssuer } from '../../helpers/issuer.ts'
import { startRedis } from '../../helpers/redis-server.ts'
import { b64json, buildModeApp, decodeSegment, feedsWithBearer, feedsWithCookie, login, metricValue, scrapeMetrics } from '../../helpers/service-app.ts'

// An app server in jwt mode with JWT_SIGNING=eddsa verifies the issuer's access tokens with the
// public keys of its JWKS, fetched over HTTP from a real issuer. Every forgery the cluster attack
// test sends, and those that only a public-key mode invites (key confusion with the public key,
// a token bringing its own key or a URL to fetch one), is a 401, never a 5xx.

const redis = await startRedis()
t.teardown(async () => await redis.stop())

const issuer = await startTestIssuer(t, { REDIS_URL: redis.url })
const app = await buildEddsaApp(t, issuer.jwksUrl)

/** The issuer's own private key, from the file the test made: to sign tokens that are right but for one thing. */
function issuerKey (): KeyObject {
  const file = readdirSync(issuer.keysDir).find((name) => name.endsWith('.json')) ?? ''
  const jwk = JSON.parse(readFileSync(join(issuer.keysDir, file), 'utf8')) as Record<string, string>
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x ?? '', d: jwk.d ?? '' }, format: 'jwk' })
}
const now = (): number => Math.floor(Date.now() / 1000)
const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ sub: 'alice', jti: randomBytes(16).toString('base64url'), sid: 'family', iss: 'auth-cluster', aud: 'auth-cluster-api', iat: now(), exp: now() + 300, ...overrides })
const header = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({ alg: 'EdDSA', typ: 'at+jwt', kid: issuer.kid, ...overrides })

/** An Ed25519-signed JWT of any header and payload. */
function ed25519 (head: unknown, payload: unknown, key: KeyObject = issuerKey()): string {
  const input = `${b64json(head)}.${b64json(payload)}`
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`
}
function hmac (head: unknown, payload: unknown, secret: string | Buffer, hash = 'sha256'): string {
  const input = `${b64json(head)}.${b64json(payload)}`
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`
}

t.test('a token from the issuer is accepted by an app server that holds no secret', async (t) => {
  const { token } = await issuerLogin(issuer.app)
  const res = await feedsWithBearer(app, token)
  t.equal(res.statusCode, 200)
  t.equal(res.json().user, 'alice')
  t.match(res.headers['server-timing'], /^auth;dur=[\d.]+;desc="jwt"$/, 'the auth step timed as in every mode')
  t.equal((await feedsWithCookie(app, token)).statusCode, 200, 'as the auth cookie too')
  t.equal(ed25519(header(), claims()).length > 0, true)
  t.equal((await feedsWithBearer(app, ed25519(header(), claims({ sub: 'carol' })))).json().user, 'carol', 'the control: a token signed here with the issuer\'s key passes, so the refusals below are about what each spoils')
  t.equal(app.config.jwt.keys.length, 0, 'no secret in the app server\'s configuration')
})

t.test('every forgery is 401 invalid_token, never a 5xx, and no URL a token names is ever fetched', async (t) => {
  // A server that would hand out the attacker's key: it must never be asked.
  let attackerHits = 0
  const attacker = http.createServer((req, res) => { attackerHits++; res.end('{"keys":[]}') })
  await new Promise<void>((resolve) => { attacker.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { attacker.close() })
  const attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`

  const real = (await issuerLogin(issuer.app)).token
  const [h, p, s] = real.split('.') as [string, string, string]
  const realClaims = decodeSegment(p) as Record<string, unknown>
  const mine = generateKeyPairSync('ed25519')
  const mineJwk = mine.publicKey.export({ format: 'jwk' }) as Record<string, string>
  const publicKey = createPublicKey(issuerKey())
  const publicJwk = publicKey.export({ format: 'jwk' }) as Record<string, string>
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const rsInput = `${b64json({ alg: 'RS256', typ: 'at+jwt', kid: issuer.kid })}.${b64json(claims())}`
  const esInput = `${b64json({ alg: 'ES256', typ: 'at+jwt', kid: issuer.kid })}.${b64json(claims())}`

  const cases: Record<string, string> = {
    'payload edited (sub: bob), signature kept': `${h}.${b64json({ ...realClaims, sub: 'bob' })}.${s}`,
    'payload edited (exp a year on), signature kept': `${h}.${b64json({ ...realClaims, exp: now() + 31_536_000 })}.${s}`,
    'alg none, empty signature': `${b64json({ alg: 'none', typ: 'at+jwt', kid: issuer.kid })}.${b64json(claims())}.`,
    'alg none, the real payload': `${b64json({ alg: 'none', typ: 'at+jwt', kid: issuer.kid })}.${p}.`,
    // Key confusion (RFC 8725 2.1): a verifier that takes the algorithm from the token would use
    // the public key, which everyone has, as an HMAC secret.
    'key confusion: HS256 keyed with the public key\'s raw 32 bytes': hmac(header({ alg: 'HS256' }), claims(), Buffer.from(publicJwk.x ?? '', 'base64url')),
    'key confusion: HS256 keyed with the public key as the JWKS shows it (x)': hmac(header({ alg: 'HS256' }), claims(), publicJwk.x ?? ''),
    'key confusion: HS256 keyed with the public key\'s PEM': hmac(header({ alg: 'HS256' }), claims(), publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    'key confusion: HS256 keyed with the public key\'s JWK as JSON': hmac(header({ alg: 'HS256' }), claims(), JSON.stringify({ ...publicJwk, kid: issuer.kid, alg: 'EdDSA', use: 'sig' })),
    'key confusion: HS512 keyed with the PEM': hmac(header({ alg: 'HS512' }), claims(), publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'sha512'),
    'an hs256-mode token (typ JWT, HS256)': hmac({ alg: 'HS256', typ: 'JWT', kid: 'default' }, claims(), randomBytes(32)),
    'EdDSA with the attacker\'s own key, the real kid': ed25519(header(), claims(), mine.privateKey),
    'EdDSA with the attacker\'s own key and kid': ed25519(header({ kid: 'attacker-key' }), claims(), mine.privateKey),
    'an embedded jwk: the attacker\'s public key': ed25519(header({ jwk: { ...mineJwk, kid: issuer.kid } }), claims(), mine.privateKey),
    'an embedded jwk beside a real signature': ed25519(header({ jwk: publicJwk }), claims()),
    'a jku to the attacker\'s JWKS': ed25519(header({ jku: `${attackerUrl}/jwks.json`, kid: 'attacker-key' }), claims(), mine.privateKey),
    'a jku beside the real kid and signature': ed25519(header({ jku: `${attackerUrl}/jwks.json` }), claims()),
    'an x5u to the attacker': ed25519(header({ x5u: `${attackerUrl}/cert.pem` }), claims(), mine.privateKey),
    'an x5c chain': ed25519(header({ x5c: ['MIIBszCCAVmgAwIBAgIU'] }), claims(), mine.privateKey),
    'a crit header': ed25519(header({ crit: ['exp'] }), claims()),
    'a b64 header': ed25519(header({ b64: false, crit: ['b64'] }), claims()),
    'an iss that names the attacker\'s server': ed25519(header(), claims({ iss: attackerUrl })),
    'typ "JWT" (not an access token)': ed25519(header({ typ: 'JWT' }), claims()),
    'no typ': ed25519({ alg: 'EdDSA', kid: issuer.kid }, claims()),
    'typ "application/at+jwt"': ed25519(header({ typ: 'application/at+jwt' }), claims()),
    'alg "Ed25519" (RFC 9864\'s name, not what we sign)': ed25519(header({ alg: 'Ed25519' }), claims()),
    'alg "eddsa" in lower case': ed25519(header({ alg: 'eddsa' }), claims()),
    'RS256, a real RSA signature from some key': `${rsInput}.${sign('sha256', Buffer.from(rsInput), rsa.privateKey).toString('base64url')}`,
    'ES256, a real ECDSA signature from some key': `${esInput}.${sign('sha256', Buffer.from(esInput), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`,
    'no kid': ed25519({ alg: 'EdDSA', typ: 'at+jwt' }, claims()),
    'an unknown kid, really signed': ed25519(header({ kid: 'not-a-key-of-ours' }), claims()),
    'kid a number': ed25519(header({ kid: 1 }), claims()),
    'kid "__proto__"': ed25519(header({ kid: '__proto__' }), claims()),
    'kid path traversal': ed25519(header({ kid: '../../../../etc/passwd' }), claims()),
    'wrong iss': ed25519(header(), claims({ iss: 'evil' })),
    'iss missing': ed25519(header(), claims({ iss: undefined })),
    'wrong aud': ed25519(header(), claims({ aud: 'another-api' })),
    'aud missing': ed25519(header(), claims({ aud: undefined })),
    'exp missing': ed25519(header(), claims({ exp: undefined })),
    'exp a string': ed25519(header(), claims({ exp: String(now() + 300) })),
    'iat missing': ed25519(header(), claims({ iat: undefined })),
    'iat an hour in the future': ed25519(header(), claims({ iat: now() + 3600 })),
    'nbf in the future': ed25519(header(), claims({ nbf: now() + 600 })),
    'sub missing': ed25519(header(), claims({ sub: undefined })),
    'sub empty': ed25519(header(), claims({ sub: '' })),
    'sub a number': ed25519(header(), claims({ sub: 42 })),
    'jti missing': ed25519(header(), claims({ jti: undefined })),
    'jti too short': ed25519(header(), claims({ jti: 'abc' })),
    'payload a JSON array': ed25519(header(), ['alice']),
    'payload not JSON': (() => { const input = `${b64json(header())}.${Buffer.from('sub=alice').toString('base64url')}`; return `${input}.${sign(null, Buffer.from(input), issuerKey()).toString('base64url')}` })(),
    'a 5000-character token': `${h}.${'A'.repeat(5000)}.${s}`,
    'signature truncated': `${h}.${p}.${s.slice(0, -4)}`,
    'signature last character changed (same decoded bytes)': (() => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      return `${h}.${p}.${s.slice(0, -1)}${alphabet[alphabet.indexOf(s.at(-1) ?? 'A') ^ 1] ?? 'A'}`
    })(),
    'standard base64 signature': `${h}.${p}.${Buffer.from(s, 'base64url').toString('base64')}`,
    'the signature of another real token': (() => { const other = ed25519(header(), claims({ sub: 'bob' })); return `${h}.${p}.${other.split('.')[2] ?? ''}` })(),
    'two segments': `${h}.${p}`,
    'four segments': `${real}.${s}`,
    'random garbage': 'q9!@#$%^&*()',
    'a session id': 'A'.repeat(43)
  }
  for (const [name, forged] of Object.entries(cases)) {
    const res = await feedsWithBearer(app, forged)
    t.equal(res.statusCode, 401, `${name}: 401`)
    t.same(res.json(), { error: 'unauthorized', reason: 'invalid_token', servedBy: 'app-eddsa' }, `${name}: invalid_token`)
    t.equal((await feedsWithCookie(app, forged)).statusCode, 401, `${name}: 401 as a cookie too`)
  }
  t.equal(attackerHits, 0, 'the attacker\'s server was never asked for anything')
  const metrics = await scrapeMetrics(app)
  t.ok(metricValue(metrics, 'jwks_fetches_total', { reason: 'unknown_kid' }) <= 1, 'the unknown kids cost at most one fetch from the issuer (the cooldown)')
  t.equal(metricValue(metrics, 'auth_outcomes_total', { outcome: 'unauthorized', reason: 'invalid_token' }) >= Object.keys(cases).length * 2, true)
  t.equal((await feedsWithBearer(app, real)).statusCode, 200, 'the real token still works after all that')
})

t.test('expired is its own reason; the clock tolerance is JWT_CLOCK_TOLERANCE_SECONDS', async (t) => {
  const expired = await feedsWithBearer(app, ed25519(header(), claims({ iat: now() - 600, exp: now() - 60 })))
  t.same(expired.json(), { error: 'unauthorized', reason: 'expired', servedBy: 'app-eddsa' })
  t.equal((await feedsWithBearer(app, ed25519(header(), claims({ exp: now() - 2 })))).statusCode, 200, 'expired 2 s ago: within the 5 s tolerance')
  t.equal((await feedsWithBearer(app, ed25519(header(), claims({ iat: now() + 2 })))).statusCode, 200, 'issued 2 s ahead: a clock running ahead')
  const strict = await buildEddsaApp(t, issuer.jwksUrl, { JWT_CLOCK_TOLERANCE_SECONDS: '0', SERVER_ID: 'strict' })
  t.equal((await feedsWithBearer(strict, ed25519(header(), claims({ exp: now() - 2 })))).json().reason, 'expired')
})

t.test('the app server issues nothing: /login and /logout are not its routes', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { error: 'not_found', servedBy: 'app-eddsa' })
  t.equal((await app.inject({ method: 'POST', url: '/logout' })).statusCode, 404)
  t.same((await app.inject({ method: 'GET', url: '/health' })).json(), { status: 'ok', servedBy: 'app-eddsa', mode: 'jwt', store: 'none', signing: 'eddsa', jwks: 'up' }, 'no store; the JWKS on its own')
})

t.test('the issuer gone: the keys held keep verifying; the health says the JWKS is down', async (t) => {
  const own = await startTestIssuer(t, { REDIS_URL: redis.url })
  const reader = await buildEddsaApp(t, own.jwksUrl, { JWKS_REFRESH_SECONDS: '1', SERVER_ID: 'reader' })
  const { token } = await issuerLogin(own.app)
  await own.app.close()
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.match((await reader.inject({ method: 'GET', url: '/health' })).json(), { store: 'none', jwks: 'down' }, 'its refresh failed')
  for (let i = 0; i < 5; i++) t.equal((await feedsWithBearer(reader, token)).statusCode, 200, `read ${i + 1} with the issuer gone`)
  t.ok(metricValue(await scrapeMetrics(reader), 'jwks_fetches_total', { reason: 'interval', result: 'failed' }) >= 1)
})

t.test('JWT_SIGNING=eddsa: the app server\'s configuration says what it needs, and refuses any secret', async (t) => {
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadServerConfig({ AUTH_MODE: 'jwt', JWT_SIGNING: 'eddsa', ...env })
    } catch (err) {
      if (err instanceof ConfigError) return err.problems
      throw err
    }
    return []
  }
  t.match(problems({}), [/^JWKS_URL is required in jwt mode with JWT_SIGNING=eddsa/])
  t.match(problems({ JWKS_URL: 'ftp://x/jwks' }), [/^JWKS_URL must be an http:\/\/ or https:\/\/ URL/])
  t.match(problems({ JWKS_URL: 'http://i/jwks', JWT_SECRET: randomBytes(40).toString('base64') }), [/^JWT_SECRET is set, but with JWT_SIGNING=eddsa an app server holds no secret/])
  t.match(problems({ JWKS_URL: 'http://i/jwks', JWT_SECRETS: `a:${randomBytes(40).toString('base64')}` }), [/^JWT_SECRETS is set/])
  t.match(problems({ JWKS_URL: 'http://i/jwks', JWT_REVOCATION: 'redis' }), [/^JWT_REVOCATION=redis is for JWT_SIGNING=hs256/])
  t.match(problems({ JWT_SIGNING: 'rs256' }), [/^JWT_SIGNING must be one of hs256, eddsa/])
  t.same(problems({ JWKS_URL: 'http://i/jwks', JWT_SECRET_FILE: '/nonexistent' }), [], 'JWT_SECRET_FILE is not read in this mode (Compose names it for every mode)')
  const config = loadServerConfig({ AUTH_MODE: 'jwt', JWT_SIGNING: 'eddsa', JWKS_URL: 'http://i/jwks' })
  t.same(config.jwt.jwks, { url: 'http://i/jwks', refreshSeconds: 60, cooldownSeconds: 30 })
  t.equal(loadServerConfig({ AUTH_MODE: 'jwt', JWT_SECRET: randomBytes(40).toString('base64') }).jwt.signing, 'hs256', 'hs256 stays the default')
})

t.test('hs256 stays as it was: its own tokens, its own /login', async (t) => {
  const hs = await buildModeApp(t, 'jwt')
  const { token } = await login(hs)
  t.same(decodeSegment(token.split('.')[0]), { alg: 'HS256', typ: 'JWT', kid: 'default' })
  t.equal((await feedsWithBearer(app, token)).json().reason, 'invalid_token', 'an hs256 token means nothing to an eddsa server')
  t.equal((await feedsWithBearer(hs, (await issuerLogin(issuer.app)).token)).json().reason, 'invalid_token', 'nor the other way round')
})
