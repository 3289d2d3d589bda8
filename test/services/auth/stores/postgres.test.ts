import Fastify from 'fastify'
import pg from 'pg'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createPostgresSessions, PRUNE_BATCH_ROWS, PRUNE_INTERVAL_MS, type PostgresStore } from '../../../../services/auth/stores/postgres.ts'
import { loadServerConfig } from '../../../../services/config.ts'
import { createMetrics } from '../../../../services/metrics.ts'
import { freePort } from '../../../helpers/redis-server.ts'
import { startPostgres, type PrivatePostgres } from '../../../helpers/postgres-server.ts'
import { buildModeApp, eventually, feedsWithBearer, login, metricValue, scrapeMetrics } from '../../../helpers/service-app.ts'

const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())

/** A clock the test moves: the app reads it instead of Date.now, so time passes without sleeping. */
function testClock (): { now: () => number, advance: (seconds: number) => void } {
  let now = Date.now()
  return { now: () => now, advance: (seconds) => { now += seconds * 1000 } }
}

async function row (url: string, token: string): Promise<Record<string, unknown> | undefined> {
  return (await postgres.sql('SELECT user_name, absolute_expires_at::float8 AS absolute, idle_expires_at::float8 AS idle FROM sessions WHERE id = $1', [token], url))[0]
}

/** The store alone, as a server builds it, on the test's clock. */
async function buildStore (t: Test, url: string, env: Record<string, string> = {}, now = Date.now): Promise<PostgresStore> {
  const config = loadServerConfig({ AUTH_MODE: 'postgres', SERVER_ID: 'store-test', DATABASE_URL: url, ...env })
  const app = Fastify({ logger: false })
  const store = await createPostgresSessions({ config, log: pino({ level: 'silent' }), metrics: createMetrics('store-test', 'postgres'), app, now })
  t.teardown(async () => { await store.close(); await app.close() })
  return store
}

const logoutWith = async (app: Awaited<ReturnType<typeof buildModeApp>>, token: string): Promise<number> =>
  (await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })).statusCode

t.test('a session is a row: its user, its absolute end and its idle end; each use renews the idle end, in one UPDATE', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const app = await buildModeApp(t, 'postgres', url, { SESSION_TTL_SECONDS: '600', SESSION_IDLE_SECONDS: '120' }, { now: clock.now })
  const loginAt = clock.now()
  const { token } = await login(app, 'bob', 'builder')
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '43 base64url characters, as in the other session modes')
  t.same(await row(url, token), { user_name: 'bob', absolute: loginAt + 600_000, idle: loginAt + 120_000 })

  clock.advance(100)
  const before = await scrapeMetrics(app)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200)
  t.same(await row(url, token), { user_name: 'bob', absolute: loginAt + 600_000, idle: clock.now() + 120_000 }, 'used at 100 s: idle until 220 s')
  const after = await scrapeMetrics(app)
  const count = (text: string, command: string): number => metricValue(text, 'session_store_commands_total', { command })
  t.same(['update', 'insert', 'delete'].map((c) => count(after, c) - count(before, c)), [1, 0, 0], 'a request is one statement: the UPDATE that reads and renews')
  t.equal(count(before, 'insert'), 1, 'a login is one INSERT')

  t.equal(await logoutWith(app, token), 204)
  t.equal(await row(url, token), undefined, 'logout deletes the row')
  t.equal(count(await scrapeMetrics(app), 'delete'), 1, 'with one DELETE')
  t.equal((await feedsWithBearer(app, token)).json().reason, 'unknown_session')
})

t.test('the idle timeout: a session used within it lives on; left unused past it, it is expired, deleted, then unknown', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const app = await buildModeApp(t, 'postgres', url, { SESSION_TTL_SECONDS: '3600', SESSION_IDLE_SECONDS: '60' }, { now: clock.now })
  const busy = await login(app)
  const idle = await login(app, 'carol', 'lighthouse')
  for (let i = 0; i < 3; i++) {
    clock.advance(50)
    t.equal((await feedsWithBearer(app, busy.token)).statusCode, 200, `used at ${50 * (i + 1)} s, 50 s after its last use`)
  }
  const refused = await feedsWithBearer(app, idle.token)
  t.equal(refused.json().reason, 'expired', 'unused for 150 s: expired')
  t.equal(await row(url, idle.token), undefined, 'and its row deleted')
  t.equal((await feedsWithBearer(app, idle.token)).json().reason, 'unknown_session')
})

t.test('the absolute timeout holds however busy the session is: the idle end is never renewed past it', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const app = await buildModeApp(t, 'postgres', url, { SESSION_TTL_SECONDS: '2', SESSION_IDLE_SECONDS: '2' }, { now: clock.now })
  const loginAt = clock.now()
  const { token } = await login(app)
  const answers: string[] = []
  for (let i = 0; i < 4; i++) {
    clock.advance(0.5)
    const res = await feedsWithBearer(app, token)
    answers.push(res.statusCode === 200 ? 'ok' : res.json().reason)
    if (i === 2) t.equal((await row(url, token))?.idle, loginAt + 2000, 'renewed at 1.5 s, the idle end stays at the absolute end')
  }
  t.same(answers, ['ok', 'ok', 'ok', 'expired'], 'used every 0.5 s, refused at 2 s')
})

t.test('twenty requests at once on a session past its idle end: the first touch does not renew it for the others', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const app = await buildModeApp(t, 'postgres', url, { SESSION_TTL_SECONDS: '600', SESSION_IDLE_SECONDS: '60' }, { now: clock.now })
  const { token } = await login(app)
  clock.advance(60)
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await feedsWithBearer(app, token)))
  const reasons = new Set(answers.map((a) => a.statusCode === 200 ? 'ok' : a.json().reason as string))
  t.notOk(reasons.has('ok'), `none accepted (${[...reasons].join(', ')})`)
  t.ok(reasons.has('expired'), 'those that found it say expired')
  t.same([...reasons].filter((r) => r !== 'expired' && r !== 'unknown_session'), [], 'the others found it gone')
})

t.test('every server on the database accepts the session, and a logout on one ends it on all', async (t) => {
  const url = await postgres.createDatabase()
  const one = await buildModeApp(t, 'postgres', url, { SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'postgres', url, { SERVER_ID: 'two' })
  const { token } = await login(one)
  const there = await feedsWithBearer(two, token)
  t.equal(there.statusCode, 200)
  t.match(there.json(), { servedBy: 'two', user: 'alice' })
  t.equal(await logoutWith(two, token), 204)
  t.equal((await feedsWithBearer(one, token)).json().reason, 'unknown_session')
})

t.test('eight servers starting at once on an empty database all create the schema without a failure', async (t) => {
  const url = await postgres.createDatabase()
  const stores = await Promise.all(Array.from({ length: 8 }, async () => await buildStore(t, url)))
  t.same(stores.map((s) => s.status()), Array(8).fill('up'), 'every store is up: none lost the race on the catalog')
  const tables = await postgres.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", [], url)
  t.same(tables.map((r) => r.tablename), ['sessions', 'sessions_pruned'])
  const indexes = await postgres.sql("SELECT indexname FROM pg_indexes WHERE tablename = 'sessions' ORDER BY indexname", [], url)
  t.same(indexes.map((r) => r.indexname), ['sessions_idle_expires_at', 'sessions_pkey'], 'the id, and the idle end pruning looks up')
})

t.test('pruning: ended sessions only, in batches; one server per interval', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const one = await buildStore(t, url, {}, clock.now)
  const two = await buildStore(t, url, {}, clock.now)
  const at = clock.now()
  const ended = PRUNE_BATCH_ROWS * 2 + 500
  await postgres.sql(`INSERT INTO sessions SELECT 'ended-' || i, 'alice', $1::bigint + 3600000, $1::bigint - i FROM generate_series(0, ${ended - 1}) AS i`, [at], url)
  await postgres.sql("INSERT INTO sessions SELECT 'live-' || i, 'bob', $1::bigint + 3600000, $1::bigint + 3600000 FROM generate_series(0, 98) AS i", [at], url)
  await postgres.sql("INSERT INTO sessions VALUES ('ends-in-30-s', 'bob', $1::bigint + 3600000, $1::bigint + 30000)", [at], url)

  const turns = await Promise.all([one.prune(at), two.prune(at)])
  t.same(turns.filter((n) => n === undefined).length, 1, `two servers asking at once: one gets the turn, the other skips (${JSON.stringify(turns)})`)
  t.equal(turns.find((n) => n !== undefined), ended, `the one that did deleted the ${ended} ended sessions, in ${Math.ceil(ended / PRUNE_BATCH_ROWS)} batches`)
  t.same(await postgres.sql('SELECT count(*)::int AS n, min(user_name) AS u FROM sessions', [], url), [{ n: 100, u: 'bob' }], 'and none still in its window')

  clock.advance(PRUNE_INTERVAL_MS / 1000 - 1)
  t.equal(await one.prune(clock.now()), undefined, 'a second prune within the interval: nobody\'s turn')
  clock.advance(1)
  t.equal(await two.prune(clock.now()), 1, 'an interval later there is a turn again, and the session that ended meanwhile goes')
})

t.test('the prune\'s lookup uses the index on the idle end, not a scan of every session', async (t) => {
  const url = await postgres.createDatabase()
  await buildStore(t, url)
  await postgres.sql("INSERT INTO sessions SELECT md5(i::text), 'alice', 9e15::bigint, 1700000000000 + i FROM generate_series(1, 20000) AS i", [], url)
  await postgres.sql('ANALYZE sessions', [], url)
  const plan = (await postgres.sql('EXPLAIN SELECT id FROM sessions WHERE idle_expires_at <= 1700000000100 ORDER BY idle_expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED', [], url))
    .map((r) => String(r['QUERY PLAN'])).join('\n')
  t.match(plan, /Index Scan using sessions_idle_expires_at/, plan)
})

t.test('the sessions table dropped under a running server: 503s, then it is created again and logins work', async (t) => {
  const url = await postgres.createDatabase()
  const app = await buildModeApp(t, 'postgres', url)
  await postgres.sql('DROP TABLE sessions', [], url)
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })).statusCode, 503)
  t.ok(await eventually(async () => (await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } })).statusCode === 200, 5000), 'a login works again within 5 s')
})

async function timed<T> (send: () => Promise<T>): Promise<{ answer: T, ms: number }> {
  const t0 = performance.now()
  const answer = await send()
  return { answer, ms: performance.now() - t0 }
}

t.test('PostgreSQL down at start: the server starts, says so in /health, answers 503 fast; up again, it works by itself', async (t) => {
  const own = await startPostgres()
  t.teardown(async () => await own.remove())
  await own.stop()
  const started = performance.now()
  const app = await buildModeApp(t, 'postgres', own.url, { SERVER_ID: 'lonely' })
  t.ok(performance.now() - started < 5000, 'buildApp does not hang on an unreachable database')
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.same(health.json(), { status: 'ok', servedBy: 'lonely', mode: 'postgres', store: 'down' }, 'liveness 200, the store down')

  for (const [name, request] of [
    ['login', { method: 'POST' as const, url: '/login', payload: { username: 'alice', password: 'wonderland' } }],
    ['feeds', { method: 'GET' as const, url: '/feeds', headers: { authorization: `Bearer ${'Q'.repeat(43)}` } }],
    ['logout', { method: 'POST' as const, url: '/logout', headers: { authorization: `Bearer ${'Q'.repeat(43)}` } }]
  ] as const) {
    const { answer, ms } = await timed(async () => await app.inject(request))
    t.equal(answer.statusCode, 503, `${name}: 503`)
    t.same(answer.json(), { error: 'session_store_unavailable', servedBy: 'lonely' }, `${name}: the contract's body`)
    t.ok(ms < 1000, `${name}: answered in ${ms.toFixed(0)} ms`)
  }
  t.equal((await feedsWithBearer(app, 'not-a-session-id')).json().reason, 'invalid_token', 'a token that could never be an id is refused without asking')

  await own.start()
  t.ok(await eventually(async () => (await app.inject({ method: 'GET', url: '/health' })).json().store === 'up', 5000), 'with no request to tell it, /health says up within 5 s')
  const { token } = await login(app)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'and sessions work: the schema was made once the database came')
})

async function loadedServer (t: Test, env: Record<string, string> = {}): Promise<{ own: PrivatePostgres, app: Awaited<ReturnType<typeof buildModeApp>>, token: string }> {
  const own = await startPostgres()
  t.teardown(async () => { own.resume(); await own.remove() })
  const app = await buildModeApp(t, 'postgres', own.url, { SERVER_ID: 'survivor', ...env })
  const { token } = await login(app)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200)
  return { own, app, token }
}

t.test('PostgreSQL killed (SIGKILL) mid-run: 503 within a second, not a 401 or a 500; restarted, the session is still there', async (t) => {
  const { own, app, token } = await loadedServer(t)
  await own.stop('SIGKILL')
  for (let i = 0; i < 5; i++) {
    const { answer, ms } = await timed(async () => await feedsWithBearer(app, token))
    t.equal(answer.statusCode, 503, `request ${i + 1} during the outage: 503`)
    t.equal(answer.json().error, 'session_store_unavailable')
    t.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms`)
  }
  t.ok(await eventually(async () => (await app.inject({ method: 'GET', url: '/health' })).json().store === 'down', 2000), '/health says the store is down')
  await own.start()
  t.ok(await eventually(async () => (await feedsWithBearer(app, token)).statusCode === 200, 5000), 'the session from before works again within 5 s: it was committed to disk')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).json().store, 'up')
})

t.test('PostgreSQL frozen (SIGSTOP): every request is a 503 within PG_QUERY_TIMEOUT_MS, many at once too; thawed, the pool is whole again', async (t) => {
  const { own, app, token } = await loadedServer(t, { PG_QUERY_TIMEOUT_MS: '300', PG_POOL_SIZE: '4' })
  own.pause()
  // Five times the pool: those waiting for a connection are bounded too, not only those holding one.
  const frozen = await Promise.all(Array.from({ length: 20 }, async () => await timed(async () => await feedsWithBearer(app, token))))
  t.same(frozen.map((f) => f.answer.statusCode), Array(20).fill(503), 'twenty at once: twenty 503s')
  const slowest = Math.max(...frozen.map((f) => f.ms))
  t.ok(slowest >= 250 && slowest < 1000, `gave up after ${slowest.toFixed(0)} ms at most (timeout 300 ms, for the wait and the query together)`)
  const again = await timed(async () => await feedsWithBearer(app, token))
  t.ok(again.answer.statusCode === 503 && again.ms < 1000, `still frozen: 503 in ${again.ms.toFixed(0)} ms, the timed-out connections gave back their places`)
  own.resume()
  t.ok(await eventually(async () => (await feedsWithBearer(app, token)).statusCode === 200, 5000), 'thawed: answers again')
  const after = await Promise.all(Array.from({ length: 20 }, async () => await feedsWithBearer(app, token)))
  t.same(after.map((a) => a.statusCode), Array(20).fill(200), 'twenty at once succeed: no connection was left stuck')
})

t.test('the connection cut under a request\'s statement (its backend killed): that request is a 503, the server lives on', async (t) => {
  // A server of its own: killing a backend makes PostgreSQL restart every other one.
  const { own, app, token } = await loadedServer(t, { PG_QUERY_TIMEOUT_MS: '3000' })
  // Another session holds the row, so the request's UPDATE waits on it, connected and busy.
  const holder = new pg.Client({ connectionString: own.url })
  holder.on('error', () => {})
  await holder.connect()
  t.teardown(async () => { await holder.end().catch(() => {}) })
  await holder.query('BEGIN')
  await holder.query('SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE', [token])
  const waiting = feedsWithBearer(app, token)
  const blocked = async (): Promise<Array<Record<string, unknown>>> => await own.sql("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
  t.ok(await eventually(async () => (await blocked()).length === 1, 2000), 'the request waits on the row')
  // No goodbye from the server: the socket just closes under the statement in flight.
  process.kill(Number((await blocked())[0]?.pid), 'SIGKILL')
  const answer = await waiting
  t.equal(answer.statusCode, 503, 'a 503, not a crash: a connection in use has an error listener too')
  t.ok(await eventually(async () => (await feedsWithBearer(app, token)).statusCode === 200, 10_000), 'and once PostgreSQL has recovered, the session works again')
})

t.test('a DATABASE_URL nobody listens on: 503 at once (connection refused), never a hang', async (t) => {
  const app = await buildModeApp(t, 'postgres', `postgres://postgres@127.0.0.1:${await freePort()}/postgres`)
  const { answer, ms } = await timed(async () => await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } }))
  t.equal(answer.statusCode, 503)
  t.ok(ms < 1000, `in ${ms.toFixed(0)} ms`)
})

t.test('a connection ended under a statement (pg_terminate_backend): the statement fails as store-unavailable, and the connection\'s late error does not end the process', async (t) => {
  // Seen in CI as an uncaught 'error' ("terminating connection due to unexpected postmaster
  // exit") when PostgreSQL was killed: the connection reported its end after the failed
  // statement had let go of it.
  const url = await postgres.createDatabase()
  const store = await buildStore(t, url, { PG_QUERY_TIMEOUT_MS: '5000' })
  const at = Date.now()
  await store.create('s-terminated', { user: 'alice', expiresAt: at + 60_000 }, at)
  const locker = new pg.Client({ connectionString: url })
  await locker.connect()
  t.teardown(async () => await locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE')
  const touching = store.touch('s-terminated', at).then(() => 'answered', (err: unknown) => (err as Error).constructor.name)
  const waiting = "SELECT pid FROM pg_stat_activity WHERE application_name = 'auth-cluster store-test' AND wait_event_type = 'Lock'"
  t.ok(await eventually(async () => (await postgres.sql(waiting, [], url)).length === 1, 3000, 20), 'the store\'s UPDATE waits on the lock')
  await postgres.sql(`SELECT pg_terminate_backend(pid) FROM (${waiting}) AS w`, [], url)
  t.equal(await touching, 'SessionStoreUnavailableError', 'the statement fails as the store being unavailable: a 503')
  // The connection's 'error' and 'end' come after the statement's failure: give them time to arrive.
  await new Promise((resolve) => setTimeout(resolve, 300))
  await locker.query('ROLLBACK')
  t.equal(store.status(), 'down')
  t.ok(await eventually(async () => (await store.touch('s-terminated', Date.now())) !== undefined, 3000, 50), 'and the next statement works on a fresh connection')
})
