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

const SERVER_TIMING = /^auth;dur=\d+\.\d{3};desc="(memory|redis|postgres|jwt|cookie)"$/

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    const app = await buildModeApp(t, mode, await storeFor(mode))
    const servedBy = `app-${mode}`
    const alice = await login(app)

    for (const url of ['/feeds', '/getFeeds']) {
      t.test(`GET ${url} with the Bearer token: 200 with this server, the user and their feeds`, async (t) => {
        const res = await feedsWithBearer(app, alice.token, url)
        t.equal(res.statusCode, 200)
        t.equal(res.headers['x-served-by'], servedBy)
        const body = res.json()
        t.same(Object.keys(body).sort(), ['feeds', 'servedBy', 'user'])
        t.match(body, { servedBy, user: 'alice' })
        t.ok(Array.isArray(body.feeds) && body.feeds.length > 0, 'alice has feeds')
        t.match(body.feeds[0], { id: Number, from: String, text: String })
        t.match(res.headers['server-timing'], SERVER_TIMING)
        t.match(res.headers['server-timing'], `desc="${mode}"`)
      })

      t.test(`GET ${url} with the login cookie: 200`, async (t) => {
        const res = await feedsWithCookie(app, alice.cookie, url)
        t.equal(res.statusCode, 200)
        t.match(res.json(), { servedBy, user: 'alice' })
        t.match(res.headers['server-timing'], SERVER_TIMING)
      })

      t.test(`GET ${url} with no credential: 401 missing_token and a Bearer challenge`, async (t) => {
        const res = await app.inject({ method: 'GET', url })
        t.equal(res.statusCode, 401)
        t.same(res.json(), { error: 'unauthorized', reason: 'missing_token', servedBy })
        t.equal(res.headers['www-authenticate'], 'Bearer realm="auth-cluster"')
        t.equal(res.headers['x-served-by'], servedBy)
        t.notOk(res.headers['server-timing'], 'nothing was verified, so there is no auth timing')
      })
    }

    t.test('each user sees their own feeds', async (t) => {
      const bob = await login(app, 'bob', 'builder')
      const carol = await login(app, 'carol', 'lighthouse')
      const a = (await feedsWithBearer(app, alice.token)).json()
      const b = (await feedsWithBearer(app, bob.token)).json()
      const c = (await feedsWithBearer(app, carol.token)).json()
      t.equal(b.user, 'bob')
      t.equal(c.user, 'carol')
      t.notSame(a.feeds, b.feeds)
      t.notSame(b.feeds, c.feeds)
    })

    t.test('an empty cookie is missing_token', async (t) => {
      const res = await app.inject({ method: 'GET', url: '/feeds', headers: { cookie: 'auth=' } })
      t.equal(res.json().reason, 'missing_token')
      const other = await app.inject({ method: 'GET', url: '/feeds', cookies: { session: alice.token } })
      t.equal(other.json().reason, 'missing_token', 'a cookie of another name is not ours')
    })

    t.test('a malformed Authorization header is 401 invalid_token, never a 5xx', async (t) => {
      const headers = ['Bearer', 'Bearer ', 'Bearer  ', `Basic ${Buffer.from('alice:wonderland').toString('base64')}`, alice.token,
        `Token ${alice.token}`, `Bearer ${alice.token} extra`, `Bearer\t${alice.token}`, `Bearer: ${alice.token}`, `Bearer${alice.token}`, '', ' ']
      for (const authorization of headers) {
        const res = await app.inject({ method: 'GET', url: '/feeds', headers: { authorization } })
        t.equal(res.statusCode, 401, JSON.stringify(authorization.slice(0, 30)))
        t.same(res.json(), { error: 'unauthorized', reason: 'invalid_token', servedBy }, JSON.stringify(authorization.slice(0, 30)))
        t.match(res.headers['www-authenticate'], 'error="invalid_token"')
      }
    })

    t.test('the scheme is case-insensitive and extra spaces around the token are fine', async (t) => {
      for (const authorization of [`bearer ${alice.token}`, `BEARER ${alice.token}`, `Bearer   ${alice.token}`, `Bearer ${alice.token}  `]) {
        t.equal((await app.inject({ method: 'GET', url: '/feeds', headers: { authorization } })).statusCode, 200, JSON.stringify(authorization.slice(0, 12)))
      }
    })

    t.test('an Authorization header wins over the cookie, even when it is the bad one', async (t) => {
      const res = await app.inject({ method: 'GET', url: '/feeds', headers: { authorization: 'Bearer nope' }, cookies: { auth: alice.cookie } })
      t.equal(res.statusCode, 401)
      t.equal(res.json().reason, 'invalid_token')
      const good = await app.inject({ method: 'GET', url: '/feeds', headers: { authorization: `Bearer ${alice.token}` }, cookies: { auth: 'nope' } })
      t.equal(good.statusCode, 200)
    })

    t.test('a refused token also carries Server-Timing, since it was checked', async (t) => {
      const res = await feedsWithBearer(app, 'x'.repeat(43))
      t.equal(res.statusCode, 401)
      t.match(res.headers['server-timing'], SERVER_TIMING)
    })

    t.test('auth_outcomes_total moves with each outcome and reason', async (t) => {
      const fresh = await buildModeApp(t, mode, await storeFor(mode))
      const { token } = await login(fresh)
      const count = async (labels: Record<string, string>): Promise<number> => metricValue(await scrapeMetrics(fresh), 'auth_outcomes_total', { ...labels, mode, server: servedBy })

      t.equal(await count({ outcome: 'ok', reason: 'none' }), 0, 'nothing counted yet')
      await feedsWithBearer(fresh, token)
      await feedsWithCookie(fresh, token, '/getFeeds')
      await feedsWithBearer(fresh, token)
      t.equal(await count({ outcome: 'ok', reason: 'none' }), 3)

      await fresh.inject({ method: 'GET', url: '/feeds' })
      await fresh.inject({ method: 'GET', url: '/feeds' })
      t.equal(await count({ outcome: 'unauthorized', reason: 'missing_token' }), 2)

      await fresh.inject({ method: 'GET', url: '/feeds', headers: { authorization: 'Basic x' } })
      await feedsWithBearer(fresh, 'not-a-token')
      t.equal(await count({ outcome: 'unauthorized', reason: 'invalid_token' }), 2)

      if (!isStateless(mode)) {
        await feedsWithBearer(fresh, 'A'.repeat(43))
        t.equal(await count({ outcome: 'unauthorized', reason: 'unknown_session' }), 1)
      }
      t.equal(await count({ outcome: 'ok', reason: 'none' }), 3, 'refusals did not move the ok count')

      const text = await scrapeMetrics(fresh)
      // Only presented tokens are verified, hence timed: 3 accepted, 'not-a-token', and the unknown session.
      t.equal(metricValue(text, 'auth_duration_seconds_count', { mode }), isStateless(mode) ? 4 : 5, 'every verification is timed')
    })
  })
}
