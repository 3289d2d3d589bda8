import { createHmac, generateKeyPairSync, randomBytes, sign as rsaSign } from 'node:crypto'
import { Redis } from 'ioredis'
import t from 'tap'
import { JWT_AUDIENCE, JWT_ISSUER } from '../../../services/config.ts'
import { TEST_SECRET, b64json, buildModeApp, craftJwt, decodeSegment, feedsWithBearer, feedsWithCookie, goodClaims, login, sleep } from '../../helpers/service-app.ts'
import { startRedis } from '../../helpers/redis-server.ts'

const now = (): number => Math.floor(Date.now() / 1000)

t.test('a JWT is readable by anyone: HS256, plain JSON claims, exp - iat = SESSION_TTL_SECONDS', async (t) => {
  const app = await buildModeApp(t, 'jwt', undefined, { SESSION_TTL_SECONDS: '900' })
  const before = now()
  const { token, cookie } = await login(app, 'carol', 'lighthouse')
  const segments = token.split('.')
  t.equal(segments.length, 3, 'header.payload.signature')
  t.equal(cookie, token, 'the cookie carries the same token')

  const header = decodeSegment(segments[0])
  t.same(header, { alg: 'HS256', typ: 'JWT', kid: 'default' }, 'a lone JWT_SECRET is the key "default"')

  // No key needed: base64url is an encoding, not encryption.
  const payload = decodeSegment(segments[1]) as Record<string, unknown>
  t.match(payload, { sub: 'carol', iss: JWT_ISSUER, aud: JWT_AUDIENCE, iat: Number, exp: Number, jti: String })
  t.equal((payload.exp as number) - (payload.iat as number), 900, 'exp - iat is the configured lifetime')
  t.ok((payload.iat as number) >= before && (payload.iat as number) <= now(), 'iat is now')
  t.notMatch(JSON.stringify(payload), 'lighthouse', 'the password is not in it')

  const signature = Buffer.from(segments[2] ?? '', 'base64url')
  t.equal(signature.length, 32, 'a 256-bit HMAC')
  const expected = createHmac('sha256', TEST_SECRET).update(`${segments[0]}.${segments[1]}`).digest()
  t.ok(signature.equals(expected), 'HMAC-SHA256 of header.payload with the shared secret')
})

t.test('each login gets a new token (a fresh jti), and expiresIn matches the token', async (t) => {
  const app = await buildModeApp(t, 'jwt')
  const a = await login(app)
  const b = await login(app)
  t.not(a.token, b.token)
  t.not((decodeSegment(a.token.split('.')[1]) as { jti: string }).jti, (decodeSegment(b.token.split('.')[1]) as { jti: string }).jti)
  const claims = decodeSegment(a.token.split('.')[1]) as { iat: number, exp: number }
  t.equal(a.response.json().expiresIn, claims.exp - claims.iat)
})

t.test('any server with the same secret accepts the token; one with another secret does not', async (t) => {
  const one = await buildModeApp(t, 'jwt', undefined, { SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'jwt', undefined, { SERVER_ID: 'two' })
  const stranger = await buildModeApp(t, 'jwt', undefined, { SERVER_ID: 'stranger', JWT_SECRET: randomBytes(32).toString('base64') })
  const { token } = await login(one)
  t.match((await feedsWithBearer(two, token)).json(), { servedBy: 'two', user: 'alice' }, 'no shared store needed')
  t.match((await feedsWithBearer(stranger, token)).json(), { reason: 'invalid_token' })
})

t.test('a hand-crafted token with the right secret and claims is accepted (so the refusals below are about one flaw each)', async (t) => {
  const app = await buildModeApp(t, 'jwt')
  const res = await feedsWithBearer(app, craftJwt(goodClaims({ sub: 'bob' })))
  t.equal(res.statusCode, 200)
  t.equal(res.json().user, 'bob')
})

t.test('the stateless trade-off: a JWT still works after logout, until exp', async (t) => {
  const app = await buildModeApp(t, 'jwt')
  const { token } = await login(app)
  await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })
  t.equal((await feedsWithBearer(app, token)).statusCode, 200)
})

t.test('a token past its exp is 401 expired', async (t) => {
  const app = await buildModeApp(t, 'jwt')
  const res = await feedsWithBearer(app, craftJwt(goodClaims({ iat: now() - 3600, exp: now() - 10 })))
  t.equal(res.statusCode, 401)
  t.same(res.json(), { error: 'unauthorized', reason: 'expired', servedBy: 'app-jwt' })
  t.match(res.headers['www-authenticate'], 'error_description="expired"')
})

t.test('a real token with SESSION_TTL_SECONDS=1 is expired a moment later', async (t) => {
  const app = await buildModeApp(t, 'jwt', undefined, { SESSION_TTL_SECONDS: '1', JWT_CLOCK_TOLERANCE_SECONDS: '0' })
  const { token } = await login(app)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200)
  await sleep(2100) // exp has whole-second resolution: 1 s after an iat that was rounded down
  t.equal((await feedsWithCookie(app, token)).json().reason, 'expired')
})

t.test('every forged or malformed token is 401 invalid_token, never a 5xx', async (t) => {
  const app = await buildModeApp(t, 'jwt')
  const { token } = await login(app)
  const [h, p, s] = token.split('.') as [string, string, string]
  const realClaims = decodeSegment(p) as Record<string, unknown>
  const hmac = (input: string, secret = TEST_SECRET, hash = 'sha256'): string => createHmac(hash, secret).update(input).digest('base64url')
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const rsInput = `${b64json({ alg: 'RS256', typ: 'JWT' })}.${b64json(goodClaims())}`

  const cases: Record<string, string> = {
    'payload edited (sub: bob), signature kept': `${h}.${b64json({ ...realClaims, sub: 'bob' })}.${s}`,
    'payload edited (exp pushed a year), signature kept': `${h}.${b64json({ ...realClaims, exp: now() + 31_536_000 })}.${s}`,
    'alg none, empty signature': `${b64json({ alg: 'none', typ: 'JWT' })}.${b64json(goodClaims())}.`,
    'alg none, real payload, empty signature': `${b64json({ alg: 'none', typ: 'JWT' })}.${p}.`,
    'alg "None", empty signature': `${b64json({ alg: 'None' })}.${b64json(goodClaims())}.`,
    'no signature segment content': `${h}.${p}.`,
    'signed with another 32-byte secret': craftJwt(goodClaims(), { secret: 'x'.repeat(32) }),
    'signed with the secret plus a byte': craftJwt(goodClaims(), { secret: `${TEST_SECRET}!` }),
    'HS512 with the right secret': craftJwt(goodClaims(), { header: { alg: 'HS512', typ: 'JWT' }, hash: 'sha512' }),
    'HS384 with the right secret': craftJwt(goodClaims(), { header: { alg: 'HS384', typ: 'JWT' }, hash: 'sha384' }),
    'header says HS512, HMAC-SHA256 signature': craftJwt(goodClaims(), { header: { alg: 'HS512', typ: 'JWT' } }),
    'RS256 header, HMAC signature with the secret (key confusion)': craftJwt(goodClaims(), { header: { alg: 'RS256', typ: 'JWT' } }),
    'RS256 header, a real RSA signature from some key': `${rsInput}.${rsaSign('sha256', Buffer.from(rsInput), privateKey).toString('base64url')}`,
    'no typ': craftJwt(goodClaims(), { header: { alg: 'HS256', kid: 'default' } }),
    'typ "at+jwt"': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'at+jwt', kid: 'default' } }),
    'typ "jwt" in lower case': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'jwt', kid: 'default' } }),
    'alg "hs256" in lower case': craftJwt(goodClaims(), { header: { alg: 'hs256', typ: 'JWT', kid: 'default' } }),
    'no kid': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT' } }),
    'an unknown kid': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: 'other' } }),
    'kid a number': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: 1 } }),
    'kid path traversal, signed with an empty key': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: '../../../../dev/null' }, secret: '' }),
    'kid SQL injection': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: "x' UNION SELECT 'key" }, secret: 'key' }),
    'kid "__proto__"': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: '__proto__' } }),
    'an embedded jwk (the attacker\'s own key)': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: 'default', jwk: { kty: 'oct', k: Buffer.from('attacker').toString('base64url') } }, secret: 'attacker' }),
    'a jku pointing elsewhere': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: 'default', jku: 'http://127.0.0.1:1/jwks.json' } }),
    'an x5u pointing elsewhere': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: 'default', x5u: 'http://127.0.0.1:1/cert.pem' } }),
    'an x5c chain': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: 'default', x5c: ['MIIB'] } }),
    'a crit header': craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: 'default', crit: ['exp'] } }),
    'header a JSON array': craftJwt(goodClaims(), { header: ['HS256'] }),
    'jti missing': craftJwt(goodClaims({ jti: undefined })),
    'jti a number': craftJwt(goodClaims({ jti: 1234567890123456 })),
    'jti too short': craftJwt(goodClaims({ jti: 'abc' })),
    'iat missing': craftJwt(goodClaims({ iat: undefined })),
    'iat an hour in the future': craftJwt(goodClaims({ iat: now() + 3600 })),
    'wrong aud': craftJwt(goodClaims({ aud: 'some-other-api' })),
    'aud missing': craftJwt(goodClaims({ aud: undefined })),
    'wrong iss': craftJwt(goodClaims({ iss: 'evil-issuer' })),
    'iss missing': craftJwt(goodClaims({ iss: undefined })),
    'exp missing': craftJwt(goodClaims({ exp: undefined })),
    'exp as a string': craftJwt(goodClaims({ exp: String(now() + 600) })),
    'exp null': craftJwt(goodClaims({ exp: null })),
    'nbf in the future': craftJwt(goodClaims({ nbf: now() + 600 })),
    'sub missing': craftJwt(goodClaims({ sub: undefined })),
    'sub empty': craftJwt(goodClaims({ sub: '' })),
    'sub a number': craftJwt(goodClaims({ sub: 42 })),
    'sub an object': craftJwt(goodClaims({ sub: { name: 'alice' } })),
    'payload a JSON array': craftJwt(['alice']),
    'payload JSON null': craftJwt(null),
    'payload not JSON, validly signed': (() => { const input = `${b64json({ alg: 'HS256' })}.${Buffer.from('sub=alice').toString('base64url')}`; return `${input}.${hmac(input)}` })(),
    'header not JSON, validly signed': (() => { const input = `${Buffer.from('HS256').toString('base64url')}.${b64json(goodClaims())}`; return `${input}.${hmac(input)}` })(),
    'random garbage': 'q9!@#$%^&*()',
    'a 5000-character token': `${h}.${'A'.repeat(5000)}.${s}`,
    'two segments': `${h}.${p}`,
    'four segments': `${token}.${s}`,
    'one segment': h,
    'non-base64 characters in the payload': `${h}.${p.slice(0, 10)}*${p.slice(11)}.${s}`,
    'non-base64 characters in the signature': `${h}.${p}.${s.slice(0, 10)}!${s.slice(10)}`,
    'standard base64 (+/=) instead of base64url': `${h}.${p}.${Buffer.from(s, 'base64url').toString('base64')}`,
    'signature last character changed (same decoded bytes)': (() => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      return `${h}.${p}.${s.slice(0, -1)}${alphabet[alphabet.indexOf(s.at(-1) ?? 'A') ^ 1] ?? 'A'}`
    })(),
    'signature truncated': `${h}.${p}.${s.slice(0, -4)}`,
    'signature of another real token': (() => { const other = craftJwt(goodClaims({ sub: 'bob' })); return `${h}.${p}.${other.split('.')[2] ?? ''}` })(),
    'the header and payload swapped': `${p}.${h}.${s}`,
    'dots only': '..',
    'a session id': 'A'.repeat(43)
  }

  for (const [name, forged] of Object.entries(cases)) {
    t.not(forged, token, `${name}: really differs from the real token`)
    const res = await feedsWithBearer(app, forged)
    t.equal(res.statusCode, 401, `${name}: 401`)
    t.same(res.json(), { error: 'unauthorized', reason: 'invalid_token', servedBy: 'app-jwt' }, `${name}: invalid_token`)
    const viaCookie = await feedsWithCookie(app, forged)
    t.equal(viaCookie.statusCode, 401, `${name}: 401 as a cookie too`)
  }
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'the real token still works after all that')
})

t.test('the clock tolerance is explicit and small: JWT_CLOCK_TOLERANCE_SECONDS', async (t) => {
  const app = await buildModeApp(t, 'jwt', undefined, { JWT_CLOCK_TOLERANCE_SECONDS: '5' })
  t.equal((await feedsWithBearer(app, craftJwt(goodClaims({ exp: now() - 2 })))).statusCode, 200, 'expired 2 s ago: within 5 s of skew')
  t.equal((await feedsWithBearer(app, craftJwt(goodClaims({ exp: now() - 10 })))).json().reason, 'expired', 'expired 10 s ago: refused')
  t.equal((await feedsWithBearer(app, craftJwt(goodClaims({ nbf: now() + 2 })))).statusCode, 200, 'valid in 2 s: accepted')
  t.equal((await feedsWithBearer(app, craftJwt(goodClaims({ iat: now() + 2 })))).statusCode, 200, 'issued 2 s "from now" by a server whose clock runs ahead')
  t.equal((await feedsWithBearer(app, craftJwt(goodClaims({ iat: now() + 30 })))).json().reason, 'invalid_token', 'issued 30 s from now: not by us')
  const strict = await buildModeApp(t, 'jwt', undefined, { JWT_CLOCK_TOLERANCE_SECONDS: '0', SERVER_ID: 'strict' })
  t.equal((await feedsWithBearer(strict, craftJwt(goodClaims({ exp: now() - 2 })))).json().reason, 'expired', 'with 0, expired means expired')
})

t.test('key rotation: sign with the newest kid, accept every listed kid until it is removed', async (t) => {
  const OLD = randomBytes(30).toString('base64')
  const NEW = randomBytes(30).toString('base64')
  const before = await buildModeApp(t, 'jwt', undefined, { JWT_SECRETS: `2026-10:${OLD}`, SERVER_ID: 'before' })
  const during = await buildModeApp(t, 'jwt', undefined, { JWT_SECRETS: `2026-11:${NEW},2026-10:${OLD}`, SERVER_ID: 'during' })
  const after = await buildModeApp(t, 'jwt', undefined, { JWT_SECRETS: `2026-11:${NEW}`, SERVER_ID: 'after' })

  const oldToken = (await login(before)).token
  t.equal((decodeSegment(oldToken.split('.')[0]) as { kid: string }).kid, '2026-10')
  const newToken = (await login(during)).token
  t.equal((decodeSegment(newToken.split('.')[0]) as { kid: string }).kid, '2026-11', 'signed with the first (newest) key')
  const signature = Buffer.from(newToken.split('.')[2] ?? '', 'base64url')
  t.ok(signature.equals(createHmac('sha256', NEW).update(newToken.split('.').slice(0, 2).join('.')).digest()), 'with the newest secret')

  t.equal((await feedsWithBearer(during, oldToken)).statusCode, 200, 'a token from before the rotation still works: nobody is logged out')
  t.equal((await feedsWithBearer(during, newToken)).statusCode, 200)
  t.equal((await feedsWithBearer(before, newToken)).json().reason, 'invalid_token', 'a server not yet updated refuses the new kid')
  t.equal((await feedsWithBearer(after, newToken)).statusCode, 200)
  t.equal((await feedsWithBearer(after, oldToken)).json().reason, 'invalid_token', 'once the old key is removed, its tokens are refused')
  const swapped = craftJwt(goodClaims(), { header: { alg: 'HS256', typ: 'JWT', kid: '2026-11' }, secret: OLD })
  t.equal((await feedsWithBearer(during, swapped)).json().reason, 'invalid_token', 'the kid picks the key: the old secret under the new kid fails')
})

t.test('a rotation in two passes: a key listed after the first is accepted and never signs with', async (t) => {
  const OLD = randomBytes(30).toString('base64')
  const NEW = randomBytes(30).toString('base64')
  // Pass 1 puts the new key last everywhere; pass 2 moves it to the front. Between them, a
  // server on either list accepts what the other signs, so a rolling restart refuses no one.
  const pass1 = await buildModeApp(t, 'jwt', undefined, { JWT_SECRETS: `2026-10:${OLD},2026-11:${NEW}`, SERVER_ID: 'pass1' })
  const pass2 = await buildModeApp(t, 'jwt', undefined, { JWT_SECRETS: `2026-11:${NEW},2026-10:${OLD}`, SERVER_ID: 'pass2' })
  const fromPass1 = (await login(pass1)).token
  t.equal((decodeSegment(fromPass1.split('.')[0]) as { kid: string }).kid, '2026-10', 'the first key listed signs, whatever its age')
  const fromPass2 = (await login(pass2)).token
  t.equal((await feedsWithBearer(pass1, fromPass2)).statusCode, 200, 'a server on pass 1 accepts what a server on pass 2 signs')
  t.equal((await feedsWithBearer(pass2, fromPass1)).statusCode, 200, 'and the other way round')
})

t.test('JWT_REVOCATION=redis: logout revokes the token on every server until its exp', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const env = { JWT_REVOCATION: 'redis', REDIS_URL: redis.url }
  const one = await buildModeApp(t, 'jwt', undefined, { ...env, SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'jwt', undefined, { ...env, SERVER_ID: 'two' })
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())

  const { token } = await login(one)
  const other = await login(one, 'bob', 'builder')
  t.equal((await feedsWithBearer(two, token)).statusCode, 200)
  t.equal((await one.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })).statusCode, 204)
  const refused = await feedsWithBearer(two, token)
  t.equal(refused.statusCode, 401)
  t.same(refused.json(), { error: 'unauthorized', reason: 'revoked', servedBy: 'two' }, 'refused on the other server too')
  t.equal((await feedsWithCookie(one, token)).json().reason, 'revoked', 'as a cookie too')
  t.equal((await feedsWithBearer(two, other.token)).statusCode, 200, 'other tokens are untouched')

  const jti = (decodeSegment(token.split('.')[1]) as { jti: string, exp: number }).jti
  const ttl = await client.ttl(`session:revoked:${jti}`)
  t.ok(ttl > 3590 && ttl <= 3600 + 6, `kept until the token's exp plus the clock tolerance (TTL ${ttl} s), then Redis forgets it`)

  t.equal((await one.inject({ method: 'POST', url: '/logout', headers: { authorization: 'Bearer x.y.z' } })).statusCode, 204, 'logging out garbage is a 204 and stores nothing')
  t.equal(await client.dbsize(), 1, 'one key: the revoked jti')

  t.equal((await one.inject({ method: 'GET', url: '/health' })).json().store, 'up')
  await redis.stop('SIGKILL')
  const started = performance.now()
  const down = await feedsWithBearer(one, other.token)
  t.equal(down.statusCode, 503, 'Redis down: the server cannot tell whether a token was revoked, so it says so')
  t.same(down.json(), { error: 'session_store_unavailable', servedBy: 'one' })
  t.ok(performance.now() - started < 1000, 'within a second')
  t.equal((await feedsWithBearer(one, 'x.y.z')).json().reason, 'invalid_token', 'a forgery is still refused without asking Redis')
})

t.test('without revocation, the store is "none" and nothing is written anywhere', async (t) => {
  const app = await buildModeApp(t, 'jwt')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).json().store, 'none')
})

t.test('an empty Bearer is invalid_token', async (t) => {
  const app = await buildModeApp(t, 'jwt')
  for (const authorization of ['Bearer', 'Bearer ', 'Bearer    ']) {
    const res = await app.inject({ method: 'GET', url: '/feeds', headers: { authorization } })
    t.equal(res.statusCode, 401)
    t.equal(res.json().reason, 'invalid_token', JSON.stringify(authorization))
  }
})
