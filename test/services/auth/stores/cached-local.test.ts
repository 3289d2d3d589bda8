import t from 'tap'
import { createLocalSessionCache } from '../../../../services/auth/stores/cache-local.ts'
import { startPostgres } from '../../../helpers/postgres-server.ts'
import { buildModeApp, eventually, feedsWithBearer, login, metricValue, scrapeMetrics } from '../../../helpers/service-app.ts'

// SESSION_CACHE=local against a real PostgreSQL, on the test's clock: what a cached read costs the
// database, how renewal bends the idle timeout (shorter, never longer), the absolute timeout kept
// exact, and how a logout on one server reaches another's cache (or does not).
const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())

function testClock (): { now: () => number, advance: (seconds: number) => void } {
  let now = Date.now()
  return { now: () => now, advance: (seconds) => { now += seconds * 1000 } }
}

type App = Awaited<ReturnType<typeof buildModeApp>>
// A long lease (the database must have answered within PG_QUERY_TIMEOUT_MS, in real time, for a
// hit): on a busy machine a short one would send some reads to the database and change the counts.
const LOCAL = { SESSION_CACHE: 'local', PG_QUERY_TIMEOUT_MS: '10000' }

/** The database's statements and the cache's lookups so far, from the server's own /metrics. */
async function counts (app: App): Promise<{ update: number, delete: number, hit: number, miss: number, renew: number, lease: number, bypass: number }> {
  const text = await scrapeMetrics(app)
  const lookups = (result: string): number => metricValue(text, 'session_cache_lookups_total', { cache: 'local', result })
  return {
    update: metricValue(text, 'session_store_commands_total', { command: 'update' }),
    delete: metricValue(text, 'session_store_commands_total', { command: 'delete' }),
    hit: lookups('hit'),
    miss: lookups('miss'),
    renew: lookups('renew'),
    lease: lookups('lease'),
    bypass: lookups('bypass')
  }
}

async function idleEnd (url: string, token: string): Promise<number | undefined> {
  const rows = await postgres.sql('SELECT idle_expires_at::float8 AS idle FROM sessions WHERE id = $1', [token], url)
  return rows[0]?.idle as number | undefined
}

const status = async (app: App, token: string): Promise<string> => {
  const res = await feedsWithBearer(app, token)
  return res.statusCode === 200 ? 'ok' : `${res.statusCode} ${String(res.json().reason ?? res.json().error)}`
}

t.test('a cached read costs the database nothing; the idle end is renewed once per SESSION_RENEW_EVERY_SECONDS', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const app = await buildModeApp(t, 'postgres', url, { ...LOCAL, SESSION_IDLE_SECONDS: '600', SESSION_RENEW_EVERY_SECONDS: '60' }, { now: clock.now })
  const loginAt = clock.now()
  const { token } = await login(app)
  const before = await counts(app)
  for (let i = 0; i < 10; i++) {
    clock.advance(5)
    t.equal(await status(app, token), 'ok')
  }
  const after = await counts(app)
  t.same([after.update - before.update, after.hit - before.hit], [0, 10], 'ten reads over 50 s: ten hits, no UPDATE (the login filled the cache)')
  t.equal(await idleEnd(url, token), loginAt + 600_000, 'so the idle end in the database is still the login\'s')

  clock.advance(10)
  t.equal(await status(app, token), 'ok')
  const renewed = await counts(app)
  t.same([renewed.update - after.update, renewed.renew - after.renew], [1, 1], 'at 60 s the renewal is due: one UPDATE')
  t.equal(await idleEnd(url, token), clock.now() + 600_000, 'which moved the idle end to 60 s + 600 s')
  clock.advance(1)
  t.equal(await status(app, token), 'ok')
  t.equal((await counts(app)).update, renewed.update, 'and the next read is a hit again')
})

t.test('the idle timeout with a cache: a session ends up to SESSION_RENEW_EVERY_SECONDS early, never late', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const app = await buildModeApp(t, 'postgres', url, { ...LOCAL, SESSION_IDLE_SECONDS: '60', SESSION_RENEW_EVERY_SECONDS: '20' }, { now: clock.now })
  const early = await login(app)
  const busy = await login(app, 'bob', 'builder')
  // Used at 19 s: answered from the cache, so the database still says idle until 60 s.
  clock.advance(19)
  t.equal(await status(app, early.token), 'ok', 'used at 19 s (a hit)')
  t.equal(await status(app, busy.token), 'ok')
  clock.advance(40.999)
  t.equal(await status(app, busy.token), 'ok', 'the other one, used at 59.999 s, is renewed (its renewal was due)')
  clock.advance(0.001)
  t.equal(await status(app, early.token), '401 expired', 'ended at 60 s: 41 s after its last use, not 60: 19 s early, less than SESSION_RENEW_EVERY_SECONDS')
  clock.advance(59.998)
  t.equal(await status(app, busy.token), 'ok', 'used at 59.999 s, it is alive 59.999 s later (and renewed: due again)')
  clock.advance(60)
  t.equal(await status(app, busy.token), '401 expired', 'and 60 s after that last use, ended: never later than the idle timeout')
})

t.test('the absolute timeout is exact from the cached value: refused at SESSION_TTL_SECONDS without asking for the session', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const app = await buildModeApp(t, 'postgres', url, { ...LOCAL, SESSION_TTL_SECONDS: '10', SESSION_IDLE_SECONDS: '10', SESSION_RENEW_EVERY_SECONDS: '9' }, { now: clock.now })
  const { token } = await login(app)
  clock.advance(9.5)
  t.equal(await status(app, token), 'ok', 'at 9.5 s: renewed (due), the idle end capped at the absolute end')
  const before = await counts(app)
  clock.advance(0.499)
  t.equal(await status(app, token), 'ok', 'at 9.999 s: a hit')
  clock.advance(0.001)
  t.equal(await status(app, token), '401 expired', 'at 10 s exactly: expired')
  const after = await counts(app)
  t.same([after.update - before.update, after.hit - before.hit, after.delete - before.delete], [0, 2, 1], 'both from the cache; the one statement is the DELETE of the ended session')
  t.equal(await status(app, token), '401 unknown_session', 'and it is gone from the cache and the database')
})

t.test('two servers, SESSION_CACHE_INVALIDATION=none: after a logout on one, the other serves the session from its cache until its renewal is due', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const env = { ...LOCAL, SESSION_CACHE_INVALIDATION: 'none', SESSION_RENEW_EVERY_SECONDS: '30', SESSION_CACHE_TTL_SECONDS: '60' }
  const one = await buildModeApp(t, 'postgres', url, { ...env, SERVER_ID: 'one' }, { now: clock.now })
  const two = await buildModeApp(t, 'postgres', url, { ...env, SERVER_ID: 'two' }, { now: clock.now })
  const { token } = await login(one)
  t.equal(await status(two, token), 'ok', 'two reads it from the database and caches it')
  t.equal((await one.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })).statusCode, 204)
  t.equal(await status(one, token), '401 unknown_session', 'one, which took the logout, refuses it')
  t.equal(await status(two, token), 'ok', 'two still accepts it: nothing told its cache')
  clock.advance(29.999)
  t.equal(await status(two, token), 'ok', 'and goes on for as long as its entry is not due for renewal')
  clock.advance(0.001)
  t.equal(await status(two, token), '401 unknown_session', 'at 30 s it asks the database, which says the session is gone')
  t.equal(await status(two, token), '401 unknown_session', 'and it forgot the entry')
})

t.test('two servers, SESSION_CACHE_INVALIDATION=pubsub: a logout on one reaches the other\'s cache through NOTIFY', async (t) => {
  const url = await postgres.createDatabase()
  const one = await buildModeApp(t, 'postgres', url, { ...LOCAL, SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'postgres', url, { ...LOCAL, SERVER_ID: 'two' })
  for (const app of [one, two]) t.ok(await eventually(async () => metricValue(await scrapeMetrics(app), 'session_cache_listening') === 1, 5000), 'each server listens')
  const { token } = await login(one)
  for (let i = 0; i < 3; i++) t.equal(await status(two, token), 'ok')
  const cached = await counts(two)
  t.ok(cached.hit >= 2, `two serves it from its cache (${cached.hit} hits)`)
  t.equal((await one.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })).statusCode, 204)
  const heard = await eventually(async () => metricValue(await scrapeMetrics(two), 'session_cache_invalidations_total', { kind: 'session' }) === 1, 2000, 5)
  t.ok(heard, 'two heard of the logout')
  t.equal(await status(two, token), '401 unknown_session', 'and refuses the session')
  t.equal(metricValue(await scrapeMetrics(one), 'session_cache_invalidations_total', { kind: 'session' }), 1, 'one hears its own notification too')
})

t.test('the LISTEN connection cut, a logout while it is away: the cache is off meanwhile, and dropped whole once it is back', async (t) => {
  const url = await postgres.createDatabase()
  const database = new URL(url).pathname.slice(1)
  const one = await buildModeApp(t, 'postgres', url, { ...LOCAL, SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'postgres', url, { ...LOCAL, SERVER_ID: 'two' })
  t.ok(await eventually(async () => metricValue(await scrapeMetrics(two), 'session_cache_listening') === 1, 5000), 'two listens')
  const { token } = await login(one)
  for (let i = 0; i < 3; i++) t.equal(await status(two, token), 'ok', 'two has it cached')
  // Keep two from listening again until the test says so: no new connection to this database.
  await postgres.sql(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`)
  t.teardown(async () => { await postgres.sql(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`) })
  // Make sure one's pool has a connection open to log out with.
  t.equal(await status(one, token), 'ok')
  const killed = await postgres.sql('SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1', ['auth-cluster two invalidations'])
  t.same(killed, [{ done: true }], 'two\'s LISTEN backend terminated')
  t.ok(await eventually(async () => metricValue(await scrapeMetrics(two), 'session_cache_listening') === 0, 2000, 5), 'two knows it is not listening')

  t.equal((await one.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })).statusCode, 204, 'logged out on one, while two cannot hear it')
  const gap = await status(two, token)
  t.not(gap, 'ok', `during the gap two does not serve it from its cache (${gap}): it asks the database`)

  await postgres.sql(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`)
  t.ok(await eventually(async () => metricValue(await scrapeMetrics(two), 'session_cache_listening') === 1, 5000), 'two listens again')
  t.equal(metricValue(await scrapeMetrics(two), 'session_cache_invalidations_total', { kind: 'flush' }), 2, 'and dropped its whole cache (at start, and now)')
  t.equal(await status(two, token), '401 unknown_session', 'the session ended while it was away is refused')
  const { token: fresh } = await login(one)
  t.equal(await status(two, fresh), 'ok')
  t.equal(await status(two, fresh), 'ok')
  t.ok((await counts(two)).hit > 0, 'and the cache serves again')
})

t.test('the local cache drops a fill begun before a logout it heard of meanwhile; it stays within SESSION_CACHE_MAX_ENTRIES', async (t) => {
  const clock = testClock()
  const cache = createLocalSessionCache({ maxEntries: 3, ttlMs: 10_000, now: clock.now, usable: () => true })
  const entry = { user: 'alice', expiresAt: clock.now() + 60_000, idleUntil: clock.now() + 30_000, renewedAt: clock.now() }
  const token = cache.fillToken()
  cache.drop('a')
  await cache.fill('a', entry, 10_000, token)
  t.equal(await cache.get('a'), undefined, 'a read that went to the database before the logout does not put the session back')
  await cache.fill('a', entry, 10_000, cache.fillToken())
  t.same(await cache.get('a'), entry, 'a read begun after it does')
  clock.advance(10.001)
  t.equal(await cache.get('a'), undefined, 'gone once past its TTL, on the session clock')
  for (const id of ['a', 'b', 'c', 'd']) await cache.fill(id, entry, 10_000, cache.fillToken())
  t.same(await Promise.all(['a', 'b', 'c', 'd'].map(async (id) => (await cache.get(id)) !== undefined)), [false, true, true, true], 'past 3 entries the least recently used goes')
  cache.flush()
  t.equal(await cache.get('d'), undefined, 'a flush drops everything')
})
