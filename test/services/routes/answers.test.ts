import t from 'tap'
import { FEEDS } from '../../../services/routes/feeds.ts'
import { MODES, buildModeApp, login, type Mode } from '../../helpers/service-app.ts'
import { startPostgres } from '../../helpers/postgres-server.ts'
import { startRedis } from '../../helpers/redis-server.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())
const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())
/** The store a mode's app is given: a private redis-server, or a database of its own on a private PostgreSQL. */
const storeFor = async (mode: Mode): Promise<string> => mode === 'postgres' ? await postgres.createDatabase() : redis.url

/**
 * Each answer's body, byte for byte: its fields, their values and their order. Routes with a
 * response schema are serialised from it (fast-json-stringify), which drops a field the schema
 * does not name without a word; these would then differ.
 */
for (const mode of MODES) {
  t.test(`${mode} mode: every answer's body is exactly what the contract shows`, async (t) => {
    const servedBy = `app-${mode}`
    const app = await buildModeApp(t, mode, await storeFor(mode), { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1', REDIS_KEY_PREFIX: `answers-${mode}:` })
    const json = /^application\/json; charset=utf-8$/

    const loggedIn = await login(app, 'bob', 'builder')
    t.ok(loggedIn.cookie.length > 20, 'the cookie holds the credential')
    t.equal(loggedIn.response.body, JSON.stringify({ token: loggedIn.cookie, tokenType: 'Bearer', mode, expiresIn: 3600, servedBy }), 'POST /login 200')
    t.match(loggedIn.response.headers['content-type'], json)

    for (const url of ['/feeds', '/getFeeds']) {
      const feeds = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${loggedIn.token}` } })
      t.equal(feeds.statusCode, 200)
      t.equal(feeds.body, JSON.stringify({ servedBy, user: 'bob', feeds: FEEDS.bob }), `GET ${url} 200`)
      t.match(feeds.headers['content-type'], json)
    }

    const refused = await app.inject({ method: 'GET', url: '/feeds' })
    t.equal(refused.body, JSON.stringify({ error: 'unauthorized', reason: 'missing_token', servedBy }), 'GET /feeds 401')

    const wrong = await app.inject({ method: 'POST', url: '/login', payload: { username: 'carol', password: 'nope' } })
    t.equal(wrong.statusCode, 401)
    t.equal(wrong.body, JSON.stringify({ error: 'invalid_credentials', servedBy }), 'POST /login 401')
    t.match(wrong.headers['content-type'], json)

    const throttled = await app.inject({ method: 'POST', url: '/login', payload: { username: 'carol', password: 'lighthouse' } })
    t.equal(throttled.statusCode, 429)
    const retryAfter = Number(throttled.headers['retry-after'])
    t.ok(retryAfter >= 1 && retryAfter <= 60)
    t.equal(throttled.body, JSON.stringify({ error: 'too_many_attempts', message: `too many failed logins for this account: try again in ${retryAfter} s`, retryAfter, servedBy }), 'POST /login 429')
    t.match(throttled.headers['content-type'], json)

    const health = await app.inject({ method: 'GET', url: '/health' })
    t.equal(health.body, JSON.stringify({ status: 'ok', servedBy, mode, store: mode === 'redis' || mode === 'postgres' ? 'up' : 'none' }), 'GET /health 200')
    t.match(health.headers['content-type'], json)

    const invalid = await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice' } })
    t.equal(invalid.body, JSON.stringify({ error: 'bad_request', message: "body must have required property 'password'", servedBy }), 'POST /login 400')

    const logout = await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${loggedIn.token}` } })
    t.equal(logout.statusCode, 204)
    t.equal(logout.body, '', 'POST /logout 204, no body')
  })
}
