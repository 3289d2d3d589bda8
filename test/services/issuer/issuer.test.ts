import { Redis } from 'ioredis'
import t from 'tap'
import { hashRefreshToken } from '../../../services/issuer/refresh-tokens.ts'
import { issuerLogin, refresh, startTestIssuer } from '../../helpers/issuer.ts'
import { startRedis } from '../../helpers/redis-server.ts'
import { decodeSegment, metricValue } from '../../helpers/service-app.ts'

// The issuer (JWT_SIGNING=eddsa) through inject(), against a real private redis-server: login,
// the JWKS, refresh token rotation and reuse detection (sequential and concurrent), logout,
// lifetimes on a moved clock, and a store that is down.

const redis = await startRedis()
t.teardown(async () => await redis.stop())
const client = new Redis(redis.url)
t.teardown(() => { client.disconnect() })

let prefixes = 0
/** Each test its own key prefix in the shared Redis, so their families and counters never meet. */
const env = (extra: Record<string, string> = {}): Record<string, string> => ({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: `t${++prefixes}:`, ...extra })
const cookieOf = (res: { cookies: Array<{ name: string }> }, name: string) => res.cookies.find((c) => c.name === name) as Record<string, unknown> | undefined

t.test('POST /login: a short access token signed with Ed25519, and a refresh token in the JSON and in a cookie for /token only', async (t) => {
  const issuer = await startTestIssuer(t, env())
  const res = await issuer.app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['x-served-by'], 'issuer-test')
  const body = res.json() as Record<string, unknown>
  t.same(Object.keys(body).sort(), ['expiresIn', 'mode', 'refreshExpiresIn', 'refreshToken', 'servedBy', 'token', 'tokenType'])
  t.match(body, { tokenType: 'Bearer', mode: 'jwt', expiresIn: 300, refreshExpiresIn: 86400, servedBy: 'issuer-test' })
  const [header, payload] = String(body.token).split('.')
  t.same(decodeSegment(header), { alg: 'EdDSA', typ: 'at+jwt', kid: issuer.kid }, 'exactly alg, typ and the kid of the signing key')
  const claims = decodeSegment(payload) as Record<string, unknown>
  t.same(Object.keys(claims).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub'])
  t.match(claims, { sub: 'alice', iss: 'auth-cluster', aud: 'auth-cluster-api' })
  t.equal(Number(claims.exp) - Number(claims.iat), 300, 'ACCESS_TTL_SECONDS, 300 by default')
  t.match(String(body.refreshToken), /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url')

  t.match(cookieOf(res, 'refresh'), { value: body.refreshToken, path: '/token', httpOnly: true, sameSite: 'Strict', maxAge: 86400 }, 'the refresh cookie goes to /token only')
  t.match(cookieOf(res, 'auth'), { value: body.token, path: '/', httpOnly: true, sameSite: 'Lax', maxAge: 300 }, 'the access token in the cookie the app servers read')

  const stored = await client.keys('*refresh:token:*')
  const hash = hashRefreshToken(String(body.refreshToken))
  t.ok(stored.some((k) => k.endsWith(hash)), 'the store holds the token\'s SHA-256')
  t.notOk((await client.keys('*')).some((k) => k.includes(String(body.refreshToken))), 'and never the token itself')
  for (const key of await client.keys('*refresh:family:*')) t.notOk(Object.values(await client.hgetall(key)).includes(String(body.refreshToken)))
})

t.test('POST /login refuses as the app server does: the same body schema, 401 and throttle', async (t) => {
  const issuer = await startTestIssuer(t, env({ LOGIN_MAX_FAILURES_PER_ACCOUNT: '2' }))
  for (const payload of [{}, { username: 'alice' }, { username: 'alice', password: 'wonderland', role: 'admin' }, { username: ['alice'], password: 'wonderland' }]) {
    t.equal((await issuer.app.inject({ method: 'POST', url: '/login', payload })).statusCode, 400, JSON.stringify(payload))
  }
  const wrong = await issuer.app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'nope' } })
  t.same(wrong.json(), { error: 'invalid_credentials', servedBy: 'issuer-test' })
  await issuer.app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'nope' } })
  const throttled = await issuer.app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })
  t.equal(throttled.statusCode, 429)
  t.match(throttled.json(), { error: 'too_many_attempts', retryAfter: Number })
  t.ok(Number(throttled.headers['retry-after']) > 0)
  const metrics = (await issuer.app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(metricValue(metrics, 'auth_logins_total', { result: 'invalid_credentials' }), 2)
  t.equal(metricValue(metrics, 'auth_logins_total', { result: 'throttled' }), 1)
})

t.test('GET /.well-known/jwks.json: the Ed25519 public keys, each with kid, kty, crv, x, alg and use, never d', async (t) => {
  const issuer = await startTestIssuer(t, env())
  const res = await issuer.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/jwk-set\+json/)
  const { keys } = res.json() as { keys: Array<Record<string, unknown>> }
  t.equal(keys.length, 1)
  t.same(Object.keys(keys[0] ?? {}).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'])
  t.match(keys[0], { kid: issuer.kid, kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', x: /^[A-Za-z0-9_-]{43}$/ })
  t.notMatch(res.body, /"d"/, 'no private part anywhere in the answer')
  const health = (await issuer.app.inject({ method: 'GET', url: '/health' })).json()
  t.same(health, { status: 'ok', servedBy: 'issuer-test', role: 'issuer', store: 'up', signing: issuer.kid, keys: [issuer.kid] })
})

t.test('POST /token/refresh: a new pair for the current token, which is retired in the same step', async (t) => {
  const issuer = await startTestIssuer(t, env())
  const first = await issuerLogin(issuer.app)
  const res = await refresh(issuer.app, first.refreshToken)
  t.equal(res.statusCode, 200)
  const body = res.json() as { token: string, refreshToken: string, expiresIn: number, refreshExpiresIn: number }
  t.not(body.refreshToken, first.refreshToken, 'a new refresh token')
  t.not(body.token, first.token, 'a new access token')
  t.equal(body.expiresIn, 300)
  t.ok(body.refreshExpiresIn > 86390 && body.refreshExpiresIn <= 86400, 'the family\'s absolute lifetime, from login')
  t.equal((decodeSegment(body.token.split('.')[1]) as { sid: string }).sid, (decodeSegment(first.token.split('.')[1]) as { sid: string }).sid, 'the same family (sid)')
  t.match(cookieOf(res, 'refresh'), { value: body.refreshToken, path: '/token', httpOnly: true })

  const viaCookie = await issuer.app.inject({ method: 'POST', url: '/token/refresh', cookies: { refresh: body.refreshToken } })
  t.equal(viaCookie.statusCode, 200, 'the refresh cookie alone will do')
  const third = (viaCookie.json() as { refreshToken: string }).refreshToken
  t.equal((await refresh(issuer.app, third)).statusCode, 200, 'and the chain goes on')
})

t.test('a retired refresh token presented again is theft: 401 refresh_reused, and the whole family is revoked', async (t) => {
  const issuer = await startTestIssuer(t, env())
  const victim = await issuerLogin(issuer.app)
  const other = await issuerLogin(issuer.app, 'bob', 'builder')
  const rotated = (await refresh(issuer.app, victim.refreshToken)).json() as { refreshToken: string }

  const thief = await refresh(issuer.app, victim.refreshToken)
  t.equal(thief.statusCode, 401)
  t.same(thief.json(), { error: 'unauthorized', reason: 'refresh_reused', servedBy: 'issuer-test' })
  t.match(cookieOf(thief, 'refresh'), { value: '', path: '/token' }, 'the refresh cookie is cleared')

  const newest = await refresh(issuer.app, rotated.refreshToken)
  t.equal(newest.statusCode, 401, 'the family\'s newest token stops working too: the victim logs in again')
  t.equal(newest.json().reason, 'revoked')
  t.equal((await refresh(issuer.app, victim.refreshToken)).json().reason, 'refresh_reused', 'a retired token stays a reused one, the family revoked or not')
  t.equal((await refresh(issuer.app, other.refreshToken)).statusCode, 200, 'another family is untouched')
  const metrics = (await issuer.app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(metricValue(metrics, 'auth_refreshes_total', { result: 'refresh_reused' }), 2)
  t.equal(metricValue(metrics, 'auth_refreshes_total', { result: 'revoked' }), 1)
  t.equal(metricValue(metrics, 'auth_refreshes_total', { result: 'ok' }), 2)
})

t.test('the same refresh token sent 20 times at once: exactly one succeeds, the rest are reuse, and the family dies', async (t) => {
  const issuer = await startTestIssuer(t, env())
  for (let round = 0; round < 3; round++) {
    const { refreshToken } = await issuerLogin(issuer.app)
    const answers = await Promise.all(Array.from({ length: 20 }, async () => await refresh(issuer.app, refreshToken)))
    const ok = answers.filter((a) => a.statusCode === 200)
    t.equal(ok.length, 1, `round ${round + 1}: one 200 (${answers.map((a) => a.statusCode).join(' ')})`)
    t.ok(answers.filter((a) => a.statusCode === 401).every((a) => a.json().reason === 'refresh_reused'), 'every other one is refresh_reused')
    const winner = (ok[0]?.json() as { refreshToken: string }).refreshToken
    t.equal((await refresh(issuer.app, winner)).json().reason, 'revoked', 'even the winner\'s new token is revoked: two parties held the family')
  }
})

t.test('refresh refusals: missing, malformed, unknown, and bodies of the wrong shape', async (t) => {
  const issuer = await startTestIssuer(t, env())
  const none = await issuer.app.inject({ method: 'POST', url: '/token/refresh' })
  t.equal(none.statusCode, 401)
  t.same(none.json(), { error: 'unauthorized', reason: 'missing_token', servedBy: 'issuer-test' })
  for (const token of ['x', 'A'.repeat(42), 'A'.repeat(44), `${'A'.repeat(42)}=`, 'eyJ.a.b']) t.equal((await refresh(issuer.app, token)).json().reason, 'invalid_token', JSON.stringify(token))
  t.equal((await refresh(issuer.app, 'A'.repeat(43))).json().reason, 'invalid_token', 'well formed, but nobody\'s')
  for (const payload of ['[]', '"x"', '{"refreshToken":1}', '{"refreshToken":"x","user":"bob"}', '{"token":"x"}']) {
    const res = await issuer.app.inject({ method: 'POST', url: '/token/refresh', payload, headers: { 'content-type': 'application/json' } })
    t.equal(res.statusCode, 400, payload)
    t.match(res.json(), { error: 'bad_request', message: /refreshToken/ })
  }
  t.equal((await issuer.app.inject({ method: 'GET', url: '/token/refresh' })).statusCode, 404)
})

t.test('logout revokes the family: by the refresh token, or by the access token\'s sid even once it has expired', async (t) => {
  const issuer = await startTestIssuer(t, env())
  const byRefresh = await issuerLogin(issuer.app)
  const out = await issuer.app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: byRefresh.refreshToken } })
  t.equal(out.statusCode, 204)
  t.match(cookieOf(out, 'refresh'), { value: '', path: '/token' })
  t.match(cookieOf(out, 'auth'), { value: '', path: '/' })
  t.equal((await refresh(issuer.app, byRefresh.refreshToken)).json().reason, 'revoked')

  const byAccess = await issuerLogin(issuer.app)
  t.equal((await issuer.app.inject({ method: 'POST', url: '/logout', cookies: { auth: byAccess.token } })).statusCode, 204)
  t.equal((await refresh(issuer.app, byAccess.refreshToken)).json().reason, 'revoked', 'the browser\'s case: only the auth cookie reaches /logout')

  const forged = await issuerLogin(issuer.app)
  const [h, p, s] = forged.token.split('.') as [string, string, string]
  const claims = decodeSegment(p) as Record<string, unknown>
  const edited = `${h}.${Buffer.from(JSON.stringify({ ...claims, sid: 'someone-else' })).toString('base64url')}.${s}`
  t.equal((await issuer.app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${edited}` } })).statusCode, 204)
  t.equal((await refresh(issuer.app, forged.refreshToken)).statusCode, 200, 'an edited sid is not believed: the signature is checked')

  t.equal((await issuer.app.inject({ method: 'POST', url: '/logout' })).statusCode, 204, 'nothing to end: still 204')
})

t.test('lifetimes: idle and absolute, on a moved clock', async (t) => {
  let clock = Date.now()
  const issuer = await startTestIssuer(t, env({ REFRESH_TTL_SECONDS: '600', REFRESH_IDLE_SECONDS: '120' }), { now: () => clock })
  const idle = await issuerLogin(issuer.app)
  clock += 121_000
  t.equal((await refresh(issuer.app, idle.refreshToken)).json().reason, 'expired', 'unused for longer than REFRESH_IDLE_SECONDS')

  const active = await issuerLogin(issuer.app)
  let token = active.refreshToken
  for (let i = 0; i < 5; i++) {
    clock += 100_000
    const res = await refresh(issuer.app, token)
    t.equal(res.statusCode, 200, `used every 100 s: alive at ${(i + 1) * 100} s`)
    token = (res.json() as { refreshToken: string }).refreshToken
  }
  clock += 100_000
  t.equal((await refresh(issuer.app, token)).json().reason, 'expired', 'but never past REFRESH_TTL_SECONDS from login')
})

t.test('the store down: login and refresh are 503 within a second, never a hang', async (t) => {
  const own = await startRedis()
  t.teardown(async () => await own.stop())
  const issuer = await startTestIssuer(t, { REDIS_URL: own.url })
  const { refreshToken } = await issuerLogin(issuer.app)
  await own.stop('SIGKILL')
  for (const [name, request] of [
    ['login', () => issuer.app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })],
    ['refresh', () => refresh(issuer.app, refreshToken)],
    ['logout', () => issuer.app.inject({ method: 'POST', url: '/logout', payload: { refreshToken } })]
  ] as const) {
    const started = performance.now()
    const res = await request()
    t.equal(res.statusCode, 503, name)
    t.same(res.json(), { error: 'session_store_unavailable', servedBy: 'issuer-test' }, name)
    t.ok(performance.now() - started < 1000, `${name}: within a second (${Math.round(performance.now() - started)} ms)`)
  }
  t.equal((await issuer.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode, 200, 'the JWKS needs no store')
  t.equal((await issuer.app.inject({ method: 'GET', url: '/health' })).json().store, 'down')
  await own.start()
  let back = false
  for (let i = 0; i < 40 && !back; i++) {
    back = (await issuer.app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })).statusCode === 200
    if (!back) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(back, 'logins work again once Redis is back (it came back empty: everyone logs in again)')
})
