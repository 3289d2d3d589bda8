import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { MODES, buildModeApp, feedsWithBearer, feedsWithCookie, isStateless, login, metricValue, scrapeMetrics, type Mode } from '../../helpers/service-app.ts'
import { startPostgres } from '../../helpers/postgres-server.ts'
import { startRedis } from '../../helpers/redis-server.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())
const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())
/** The store a mode's app is given: a private redis-server, or a database of its own on a private PostgreSQL. */
const storeFor = async (mode: Mode): Promise<string> => mode === 'postgres' ? await postgres.createDatabase() : redis.url

/** Everything a login form could send wrong, with the status class we insist on. */
const BAD_LOGIN_BODIES: Array<{ name: string, request: Omit<InjectOptions, 'method' | 'url'>, status: number }> = [
  { name: 'malformed JSON', request: { payload: '{"username":"alice",', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'empty JSON body', request: { payload: '', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'no body at all', request: {}, status: 400 },
  { name: 'a JSON array', request: { payload: '[{"username":"alice","password":"wonderland"}]', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'JSON null', request: { payload: 'null', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'a JSON string', request: { payload: '"alice:wonderland"', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'missing password', request: { payload: { username: 'alice' } }, status: 400 },
  { name: 'missing username', request: { payload: { password: 'wonderland' } }, status: 400 },
  { name: 'empty object', request: { payload: {} }, status: 400 },
  { name: 'empty strings', request: { payload: { username: '', password: '' } }, status: 400 },
  { name: 'numbers', request: { payload: { username: 123, password: 456 } }, status: 400 },
  { name: 'booleans', request: { payload: { username: true, password: false } }, status: 400 },
  { name: 'nulls', request: { payload: { username: null, password: null } }, status: 400 },
  { name: 'one-element arrays of the right values', request: { payload: { username: ['alice'], password: ['wonderland'] } }, status: 400 },
  { name: 'objects', request: { payload: { username: { $ne: '' }, password: { $ne: '' } } }, status: 400 },
  { name: 'username over 64 characters', request: { payload: { username: 'a'.repeat(65), password: 'wonderland' } }, status: 400 },
  { name: 'password over 256 characters', request: { payload: { username: 'alice', password: 'p'.repeat(257) } }, status: 400 },
  { name: 'a __proto__ key', request: { payload: '{"username":"alice","password":"wonderland","__proto__":{"admin":true}}', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'a constructor.prototype key', request: { payload: '{"username":"alice","password":"wonderland","constructor":{"prototype":{"admin":true}}}', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'an extra field', request: { payload: { username: 'alice', password: 'wonderland', role: 'admin' } }, status: 400 },
  { name: 'several extra fields', request: { payload: { username: 'alice', password: 'wonderland', role: 'admin', admin: true, remember: 1 } }, status: 400 },
  { name: 'nested junk beside the right pair', request: { payload: { username: 'alice', password: 'wonderland', meta: { a: { b: [1, { c: null }] } } } }, status: 400 },
  { name: 'an extra field and a missing one', request: { payload: { username: 'alice', pasword: 'wonderland' } }, status: 400 },
  { name: 'a plain "constructor" field', request: { payload: '{"username":"alice","password":"wonderland","constructor":"x"}', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'a "__proto__" string', request: { payload: '{"username":"alice","password":"wonderland","__proto__":"x"}', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'a "__proto__" key nested in junk', request: { payload: '{"username":"alice","password":"wonderland","meta":{"__proto__":{"admin":true}}}', headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'deeply nested arrays', request: { payload: `{"username":${'['.repeat(2000)}${']'.repeat(2000)},"password":"x"}`, headers: { 'content-type': 'application/json' } }, status: 400 },
  { name: 'a body over 16 KiB', request: { payload: { username: 'alice', password: 'p'.repeat(17 * 1024) } }, status: 413 },
  { name: 'a form-encoded body', request: { payload: 'username=alice&password=wonderland', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, status: 415 },
  { name: 'an XML body', request: { payload: '<login><username>alice</username></login>', headers: { 'content-type': 'application/xml' } }, status: 415 },
  { name: 'text/plain holding valid JSON', request: { payload: '{"username":"alice","password":"wonderland"}', headers: { 'content-type': 'text/plain' } }, status: 400 }
]

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    const app = await buildModeApp(t, mode, await storeFor(mode))

    t.test('POST /login with the right pair: 200, the token in the body and in an HttpOnly cookie, not cached', async (t) => {
      const res = await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^application\/json/)
      t.equal(res.headers['cache-control'], 'no-store', 'a credential must not sit in a cache')
      t.equal(res.headers['x-served-by'], `app-${mode}`)
      const body = res.json()
      t.same(Object.keys(body).sort(), ['expiresIn', 'mode', 'servedBy', 'token', 'tokenType'])
      t.match(body, { tokenType: 'Bearer', mode, expiresIn: 3600, servedBy: `app-${mode}` })
      t.type(body.token, 'string')
      t.ok(body.token.length > 20)
      t.equal(res.headers['set-cookie'], `auth=${body.token}; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax`)
    })

    t.test('SESSION_TTL_SECONDS sets expiresIn and the cookie Max-Age', async (t) => {
      const short = await buildModeApp(t, mode, await storeFor(mode), { SESSION_TTL_SECONDS: '90' })
      const { response } = await login(short, 'bob', 'builder')
      t.equal(response.json().expiresIn, 90)
      t.match(response.headers['set-cookie'], /; Max-Age=90; /)
    })

    t.test('wrong password and unknown user: the same 401, byte for byte', async (t) => {
      const wrongPassword = await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'builder' } })
      const unknownUser = await app.inject({ method: 'POST', url: '/login', payload: { username: 'mallory', password: 'wonderland' } })
      t.equal(wrongPassword.statusCode, 401)
      t.equal(unknownUser.statusCode, 401)
      t.same(wrongPassword.json(), { error: 'invalid_credentials', servedBy: `app-${mode}` })
      t.equal(unknownUser.body, wrongPassword.body, 'identical bodies: no hint of which users exist')
      t.notOk(wrongPassword.headers['set-cookie'], 'no cookie for a failed login')
      t.notOk(unknownUser.headers['set-cookie'])
    })

    t.test('a bad login body is a 4xx with a JSON body, never a 5xx and never a login', async (t) => {
      for (const { name, request, status } of BAD_LOGIN_BODIES) {
        const res = await app.inject({ method: 'POST', url: '/login', ...request })
        t.equal(res.statusCode, status, `${name}: ${res.statusCode} ${res.body.slice(0, 100)}`)
        t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
        t.match(res.json(), { error: String, servedBy: `app-${mode}` }, `${name}: our error shape`)
        t.equal(res.headers['x-served-by'], `app-${mode}`, `${name}: x-served-by`)
        t.notOk(res.headers['set-cookie'], `${name}: no cookie`)
      }
    })

    t.test('fields a login does not take are refused by name, in the body every 400 has, never stripped and logged in', async (t) => {
      const refused = async (payload: string): Promise<Record<string, unknown>> => {
        const res = await app.inject({ method: 'POST', url: '/login', payload, headers: { 'content-type': 'application/json' } })
        t.equal(res.statusCode, 400, payload)
        t.notOk(res.headers['set-cookie'], `${payload}: no cookie`)
        const body = res.json()
        t.same(Object.keys(body).sort(), ['error', 'message', 'servedBy'], `${payload}: the keys of every other 400`)
        return body
      }
      const only = ': only "username" and "password" are accepted'
      t.same(await refused('{"username":"alice","password":"wonderland","role":"admin"}'),
        { error: 'bad_request', message: `body has an unexpected field "role"${only}`, servedBy: `app-${mode}` })
      t.match(await refused('{"role":"admin","username":"alice","admin":true,"password":"wonderland","remember":1}'),
        { message: `body has unexpected fields "role", "admin" and "remember"${only}` }, 'every one named, in the order sent')
      t.match(await refused(JSON.stringify({ username: 'alice', password: 'wonderland', ...Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`f${i}`, i])) })),
        { message: `body has unexpected fields "f0", "f1", "f2", "f3", "f4" and 495 more${only}` }, 'five named, the rest counted')
      t.match(await refused(JSON.stringify({ username: 'alice', password: 'wonderland', [`x${'y'.repeat(500)}`]: 1 })),
        { message: new RegExp(`^body has an unexpected field "xy{39}…"${only}$`) }, 'a long name cut short')
      t.match(await refused('{"username":"alice","password":"wonderland","meta":{"a":{"b":[1,{"c":null}]}}}'), { message: `body has an unexpected field "meta"${only}` }, 'nested junk: the field that holds it')
      t.match(await refused('{"username":"alice","password":"wonderland","constructor":{}}'), { message: `body has an unexpected field "constructor"${only}` }, 'constructor, although every object inherits one')
      t.match(await refused('{"username":"alice","password":"wonderland","__proto__":{"admin":true}}'), { message: 'body has a forbidden field "__proto__": it could change an object\'s prototype' })
      t.match(await refused('{"username":"alice","password":"wonderland","meta":{"constructor":{"prototype":{"admin":true}}}}'), { message: 'body has a forbidden field "constructor" holding "prototype": it could change an object\'s prototype' })
      t.match(await refused('{"username":"alice","pasword":"wonderland"}'), { message: "body must have required property 'password'" }, 'a missing field is named first')
      t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype was changed')
      t.equal((await app.inject({ method: 'POST', url: '/login', payload: { password: 'wonderland', username: 'alice' } })).statusCode, 200, 'the right pair, in any order, still logs in')
    })

    t.test('login outcomes are counted in /metrics', async (t) => {
      const fresh = await buildModeApp(t, mode, await storeFor(mode))
      await login(fresh)
      await login(fresh, 'carol', 'lighthouse')
      await fresh.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'nope' } })
      const text = await scrapeMetrics(fresh)
      t.equal(metricValue(text, 'auth_logins_total', { result: 'ok', mode }), 2)
      t.equal(metricValue(text, 'auth_logins_total', { result: 'invalid_credentials', mode }), 1)
    })

    t.test('POST /logout: 204, empty, and the cookie is cleared with the same attributes', async (t) => {
      const { token } = await login(app)
      const res = await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })
      t.equal(res.statusCode, 204)
      t.equal(res.body, '')
      t.equal(res.headers['x-served-by'], `app-${mode}`)
      t.equal(res.headers['set-cookie'], 'auth=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax')
    })

    t.test('POST /logout without a credential, or with garbage, is still a 204', async (t) => {
      for (const headers of [{}, { authorization: 'Bearer garbage' }, { authorization: 'Basic YWxpY2U6d29uZGVybGFuZA==' }, { cookie: 'auth=%%%' }]) {
        const res = await app.inject({ method: 'POST', url: '/logout', headers })
        t.equal(res.statusCode, 204, JSON.stringify(headers))
      }
    })

    if (isStateless(mode)) {
      t.test(`stateless trade-off: after logout the ${mode === 'jwt' ? 'JWT' : 'sealed value'} STILL works until it expires; only the cookie is gone`, async (t) => {
        const { token } = await login(app)
        const logout = await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })
        t.equal(logout.statusCode, 204)
        const bearer = await feedsWithBearer(app, token)
        t.equal(bearer.statusCode, 200, 'a copied token keeps working: the server keeps nothing to revoke')
        t.equal(bearer.json().user, 'alice')
        const cookie = await feedsWithCookie(app, token)
        t.equal(cookie.statusCode, 200, 'so does a cookie the browser failed to drop')
      })
    } else {
      t.test('after logout the session token is refused as unknown_session, by Bearer and by cookie', async (t) => {
        const { token } = await login(app)
        t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'works before logout')
        await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })
        const bearer = await feedsWithBearer(app, token)
        t.equal(bearer.statusCode, 401)
        t.same(bearer.json(), { error: 'unauthorized', reason: 'unknown_session', servedBy: `app-${mode}` })
        t.equal((await feedsWithCookie(app, token)).json().reason, 'unknown_session')
      })

      t.test('logout by cookie alone ends the session too', async (t) => {
        const { cookie } = await login(app)
        const res = await app.inject({ method: 'POST', url: '/logout', cookies: { auth: cookie } })
        t.equal(res.statusCode, 204)
        t.equal((await feedsWithCookie(app, cookie)).json().reason, 'unknown_session')
      })

      t.test('logging out one session leaves the others alone', async (t) => {
        const first = await login(app)
        const second = await login(app)
        await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${first.token}` } })
        t.equal((await feedsWithBearer(app, second.token)).statusCode, 200)
      })
    }
  })
}

t.test('GET /login is not a route: a JSON 404 from this server', async (t) => {
  const app: FastifyInstance = await buildModeApp(t, 'memory')
  const res = await app.inject({ method: 'GET', url: '/login' })
  t.equal(res.statusCode, 404)
  t.same(res.json(), { error: 'not_found', message: 'GET /login is not a route', servedBy: 'app-memory' })
})
