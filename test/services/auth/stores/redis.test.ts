import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { buildModeApp, eventually, feedsWithBearer, feedsWithCookie, login, metricValue, scrapeMetrics, sleep } from '../../../helpers/service-app.ts'
import { freePort, startRedis } from '../../../helpers/redis-server.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())

/** A plain client to look inside the private redis. */
function inspector (t: Test, url: string): Redis {
  const client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

t.test('a session is a key holding the user and its absolute expiry, with an EX of SESSION_IDLE_SECONDS', async (t) => {
  const app = await buildModeApp(t, 'redis', redis.url, { SESSION_TTL_SECONDS: '600', SESSION_IDLE_SECONDS: '120' })
  const client = inspector(t, redis.url)
  const before = Date.now()
  const { token } = await login(app, 'bob', 'builder')
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '43 base64url characters')
  t.equal(Buffer.from(token, 'base64url').length, 32, '256 bits')
  const stored = JSON.parse(await client.get(`session:${token}`) ?? '{}') as { user: string, expiresAt: number }
  t.equal(stored.user, 'bob')
  t.ok(stored.expiresAt >= before + 600_000 && stored.expiresAt <= Date.now() + 600_000, 'expiresAt is login time + SESSION_TTL_SECONDS')
  const ttl = await client.ttl(`session:${token}`)
  t.ok(ttl > 115 && ttl <= 120, `TTL ${ttl} s is about the idle timeout, 120`)
  await client.expire(`session:${token}`, 30)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200)
  const renewed = await client.ttl(`session:${token}`)
  t.ok(renewed > 115, `each use renews the idle expiry (TTL back to ${renewed} s)`)
})

t.test('SESSION_IDLE_SECONDS: an unused session is dropped by Redis itself (real time: its EX); a used one lives on', async (t) => {
  const app = await buildModeApp(t, 'redis', redis.url, { SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '1' })
  const busy = await login(app)
  const idle = await login(app, 'carol', 'lighthouse')
  await sleep(600)
  t.equal((await feedsWithBearer(app, busy.token)).statusCode, 200, 'used at 0.6 s: its EX starts again')
  await sleep(600)
  t.equal((await feedsWithBearer(app, busy.token)).statusCode, 200, 'alive at 1.2 s, 0.6 s after its last use')
  t.equal((await feedsWithBearer(app, idle.token)).json().reason, 'unknown_session', 'unused for 1.2 s: Redis dropped it')
})

/** A clock the test moves: the app reads it instead of Date.now, so time passes without sleeping. */
function testClock (): { now: () => number, advance: (seconds: number) => void } {
  let now = Date.now()
  return { now: () => now, advance: (seconds) => { now += seconds * 1000 } }
}

t.test('the absolute timeout holds however busy the session is', async (t) => {
  const clock = testClock()
  const app = await buildModeApp(t, 'redis', redis.url, { SESSION_TTL_SECONDS: '2', SESSION_IDLE_SECONDS: '2' }, { now: clock.now })
  const { token } = await login(app)
  const answers: string[] = []
  for (let i = 0; i < 4; i++) {
    clock.advance(0.5)
    const res = await feedsWithBearer(app, token)
    answers.push(res.statusCode === 200 ? 'ok' : res.json().reason)
  }
  t.same(answers, ['ok', 'ok', 'ok', 'expired'], 'used every 0.5 s, refused at 2 s')
})

t.test('a new session id at every login', async (t) => {
  const app = await buildModeApp(t, 'redis', redis.url)
  const first = await login(app)
  const second = await login(app)
  t.not(first.token, second.token)
  t.equal(first.cookie, first.token)
})

t.test('REDIS_KEY_PREFIX names the keys, so two clusters can share one Redis', async (t) => {
  const app = await buildModeApp(t, 'redis', redis.url, { REDIS_KEY_PREFIX: 'other-cluster:' })
  const neighbour = await buildModeApp(t, 'redis', redis.url)
  const client = inspector(t, redis.url)
  const { token } = await login(app)
  t.match(await client.get(`other-cluster:${token}`), /"user":"alice"/)
  t.equal(await client.exists(`session:${token}`), 0)
  t.equal((await feedsWithBearer(neighbour, token)).json().reason, 'unknown_session', 'the default-prefix cluster does not see it')
})

t.test('every server sharing the Redis accepts the session, and logout on one ends it on all', async (t) => {
  const one = await buildModeApp(t, 'redis', redis.url, { SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'redis', redis.url, { SERVER_ID: 'two' })
  const client = inspector(t, redis.url)
  const { token } = await login(one)
  const there = await feedsWithCookie(two, token)
  t.equal(there.statusCode, 200)
  t.match(there.json(), { servedBy: 'two', user: 'alice' })

  t.equal((await two.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })).statusCode, 204)
  t.equal(await client.exists(`session:${token}`), 0, 'the key is deleted')
  t.equal((await feedsWithBearer(one, token)).json().reason, 'unknown_session')
})

t.test('a session past SESSION_TTL_SECONDS is "expired" when next presented, and its key deleted', async (t) => {
  const clock = testClock()
  const app = await buildModeApp(t, 'redis', redis.url, { SESSION_TTL_SECONDS: '60' }, { now: clock.now })
  const client = inspector(t, redis.url)
  const { token } = await login(app)
  const ttl = await client.pttl(`session:${token}`)
  t.ok(ttl > 0 && ttl <= 60_000, `its EX (${ttl} ms) is the idle timeout, never longer than SESSION_TTL_SECONDS`)
  clock.advance(59)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'works a second before its end')
  clock.advance(1)
  const res = await feedsWithBearer(app, token)
  t.equal(res.statusCode, 401)
  t.equal(res.json().reason, 'expired')
  t.equal(await client.exists(`session:${token}`), 0, 'the key is deleted')
  t.equal((await feedsWithBearer(app, token)).json().reason, 'unknown_session', 'so it is unknown after')
})

t.test('a key planted in Redis is a session: Redis is the authority (and must be protected like one)', async (t) => {
  const app = await buildModeApp(t, 'redis', redis.url)
  const client = inspector(t, redis.url)
  const id = 'P'.repeat(43)
  await client.set(`session:${id}`, JSON.stringify({ user: 'carol', expiresAt: Date.now() + 60_000 }), 'EX', 60)
  t.match((await feedsWithBearer(app, id)).json(), { user: 'carol' })
  await client.set(`session:${'Q'.repeat(43)}`, 'carol', 'EX', 60)
  t.equal((await feedsWithBearer(app, 'Q'.repeat(43))).json().reason, 'unknown_session', 'a value this server did not write is no session')
})

t.test('Redis down at start: the server still starts, says so in /health, and answers 503 fast', async (t) => {
  const port = await freePort()
  const started = performance.now()
  const app = await buildModeApp(t, 'redis', `redis://127.0.0.1:${port}`, { SERVER_ID: 'lonely' })
  t.ok(performance.now() - started < 5000, 'buildApp does not hang on an unreachable Redis')

  const health = await app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200, 'liveness: the process can answer')
  t.same(health.json(), { status: 'ok', servedBy: 'lonely', mode: 'redis', store: 'down' })

  for (const [name, request] of [
    ['login', { method: 'POST' as const, url: '/login', payload: { username: 'alice', password: 'wonderland' } }],
    ['feeds', { method: 'GET' as const, url: '/feeds', headers: { authorization: `Bearer ${'Q'.repeat(43)}` } }],
    ['logout', { method: 'POST' as const, url: '/logout', headers: { authorization: `Bearer ${'Q'.repeat(43)}` } }]
  ] as const) {
    const t0 = performance.now()
    const res = await app.inject(request)
    const ms = performance.now() - t0
    t.equal(res.statusCode, 503, `${name}: 503`)
    t.same(res.json(), { error: 'session_store_unavailable', servedBy: 'lonely' }, `${name}: the contract's body`)
    t.equal(res.headers['retry-after'], '1')
    t.ok(ms < 1000, `${name}: answered in ${ms.toFixed(0)} ms`)
  }

  const malformed = await feedsWithBearer(app, 'not-a-session-id')
  t.equal(malformed.statusCode, 401, 'a token that could never be a session id is refused without asking Redis')
  t.equal(malformed.json().reason, 'invalid_token')
  t.equal((await app.inject({ method: 'GET', url: '/feeds' })).json().reason, 'missing_token', 'so is no token at all')
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'x' } })).statusCode, 503,
    'a wrong password is a 503 too: the failed-login counters live in Redis, and an outage must not open a window for guessing')

  const text = await scrapeMetrics(app)
  t.equal(metricValue(text, 'auth_logins_total', { result: 'unavailable' }), 2)
  t.equal(metricValue(text, 'auth_outcomes_total', { outcome: 'unavailable', reason: 'session_store_unavailable' }), 1)
})

t.test('Redis killed mid-run: 503 well within a second, /health still 200 with store down; restarted: works again by itself', async (t) => {
  const own = await startRedis()
  t.teardown(async () => await own.stop())
  const app = await buildModeApp(t, 'redis', own.url, { SERVER_ID: 'survivor' })
  const before = await login(app)
  t.equal((await feedsWithBearer(app, before.token)).statusCode, 200)

  await own.stop('SIGKILL')
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    const res = await feedsWithBearer(app, before.token)
    const ms = performance.now() - t0
    t.equal(res.statusCode, 503, `request ${i + 1} during the outage: 503, not 401 or 500`)
    t.same(res.json(), { error: 'session_store_unavailable', servedBy: 'survivor' })
    t.equal(res.headers['x-served-by'], 'survivor')
    t.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms`)
  }
  const loginDuring = await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })
  t.equal(loginDuring.statusCode, 503, 'a login cannot be stored either')
  t.notOk(loginDuring.headers['set-cookie'], 'and sets no cookie')
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200)
  // The connection's close event can land a moment after the first failed command.
  t.ok(await eventually(async () => (await app.inject({ method: 'GET', url: '/health' })).json().store === 'down', 2000), '/health says the store is down')

  await own.start()
  const recovered = await eventually(async () => (await app.inject({ method: 'GET', url: '/health' })).json().store === 'up', 5000)
  t.ok(recovered, 'the client reconnects by itself within 5 s')
  const after = await login(app)
  t.equal((await feedsWithBearer(app, after.token)).statusCode, 200, 'new sessions work')
  t.equal((await feedsWithBearer(app, before.token)).json().reason, 'unknown_session',
    'the old session died with the Redis that held it (this redis keeps nothing on disk)')
})

t.test('Redis hung (accepts connections, never answers): 503 after REDIS_COMMAND_TIMEOUT_MS, not a hang', async (t) => {
  const own = await startRedis()
  t.teardown(async () => await own.stop())
  const app = await buildModeApp(t, 'redis', own.url, { REDIS_COMMAND_TIMEOUT_MS: '300' })
  const { token } = await login(app)
  own.pause()
  t.teardown(() => own.resume())
  const t0 = performance.now()
  const res = await feedsWithBearer(app, token)
  const ms = performance.now() - t0
  t.equal(res.statusCode, 503)
  t.equal(res.json().error, 'session_store_unavailable')
  t.ok(ms >= 250 && ms < 1000, `gave up after ${ms.toFixed(0)} ms (timeout 300 ms)`)
  own.resume()
  t.ok(await eventually(async () => (await feedsWithBearer(app, token)).statusCode === 200, 5000), 'answers again once Redis does')
})
