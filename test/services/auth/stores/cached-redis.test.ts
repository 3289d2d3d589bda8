import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import t from 'tap'
import { createRedisSessionCache } from '../../../../services/auth/stores/cache-redis.ts'
import { ENDED } from '../../../../services/auth/stores/cached.ts'
import { loadServerConfig } from '../../../../services/config.ts'
import { createMetrics } from '../../../../services/metrics.ts'
import { startPostgres } from '../../../helpers/postgres-server.ts'
import { startRedis } from '../../../helpers/redis-server.ts'
import { buildModeApp, eventually, feedsWithBearer, login, metricValue, scrapeMetrics } from '../../../helpers/service-app.ts'

// SESSION_CACHE=redis against a real PostgreSQL and a real Redis: one entry every server reads, a
// logout's marker no late fill overwrites, Redis down meaning the database takes the reads (never
// a 503 for a read), and the database down meaning a 503 even for a session the cache holds.
const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())
const redis = await startRedis()
t.teardown(async () => await redis.stop())

type App = Awaited<ReturnType<typeof buildModeApp>>

function testClock (): { now: () => number, advance: (seconds: number) => void } {
  let now = Date.now()
  return { now: () => now, advance: (seconds) => { now += seconds * 1000 } }
}

const cached = (redisUrl: string, env: Record<string, string> = {}): Record<string, string> =>
  ({ SESSION_CACHE: 'redis', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `t${Math.random().toString(36).slice(2, 8)}:`, PG_QUERY_TIMEOUT_MS: '10000', ...env })

async function counts (app: App): Promise<Record<'update' | 'delete' | 'hit' | 'miss' | 'ended' | 'bypass' | 'error', number>> {
  const text = await scrapeMetrics(app)
  const lookups = (result: string): number => metricValue(text, 'session_cache_lookups_total', { cache: 'redis', result })
  return {
    update: metricValue(text, 'session_store_commands_total', { command: 'update' }),
    delete: metricValue(text, 'session_store_commands_total', { command: 'delete' }),
    hit: lookups('hit'),
    miss: lookups('miss'),
    ended: lookups('ended'),
    bypass: lookups('bypass'),
    error: lookups('error')
  }
}

const status = async (app: App, token: string): Promise<string> => {
  const res = await feedsWithBearer(app, token)
  return res.statusCode === 200 ? 'ok' : `${res.statusCode} ${String(res.json().reason ?? res.json().error)}`
}
const logout = async (app: App, token: string): Promise<number> =>
  (await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })).statusCode

async function timed<T> (send: () => Promise<T>): Promise<{ answer: T, ms: number }> {
  const started = performance.now()
  const answer = await send()
  return { answer, ms: performance.now() - started }
}

t.test('one entry for every server: a login on one fills it, reads on the other are hits; one renewal per interval for the cluster', async (t) => {
  const url = await postgres.createDatabase()
  const clock = testClock()
  const env = cached(redis.url, { SESSION_RENEW_EVERY_SECONDS: '30', REDIS_KEY_PREFIX: 'shared:' })
  const inspector = new Redis(redis.url)
  t.teardown(() => inspector.disconnect())
  const one = await buildModeApp(t, 'postgres', url, { ...env, SERVER_ID: 'one' }, { now: clock.now })
  const two = await buildModeApp(t, 'postgres', url, { ...env, SERVER_ID: 'two' }, { now: clock.now })
  const { token } = await login(one)
  // The login's fill is not awaited: two may miss once before it lands.
  t.ok(await eventually(async () => (await feedsWithBearer(two, token)).statusCode === 200 && (await counts(two)).hit > 0, 2000), 'two finds the session in the cache')
  const updates = async (): Promise<number> => (await counts(one)).update + (await counts(two)).update
  const before = await updates()
  for (let i = 0; i < 5; i++) {
    clock.advance(5)
    t.equal(await status(i % 2 === 0 ? two : one, token), 'ok')
  }
  t.equal(await updates() - before, 0, 'no UPDATE in 25 s of reads on two servers')
  clock.advance(5)
  t.equal(await status(one, token), 'ok', 'at 30 s one renews it')
  // Its fill is not awaited either: wait until the entry says renewed at 30 s.
  const renewedAt = async (): Promise<unknown> => (JSON.parse(await inspector.get(`shared:cache:${token}`) ?? '{}') as { renewedAt?: number }).renewedAt
  t.ok(await eventually(async () => await renewedAt() === clock.now(), 2000, 10), 'the entry now says renewed at 30 s')
  t.equal(await status(two, token), 'ok')
  t.equal(await updates() - before, 1, 'one UPDATE, and two reads the renewed entry: the renewal is shared')
})

t.test('a logout deletes the row, then marks the entry ended: every server refuses at once, without asking the database', async (t) => {
  const url = await postgres.createDatabase()
  const env = cached(redis.url)
  const one = await buildModeApp(t, 'postgres', url, { ...env, SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'postgres', url, { ...env, SERVER_ID: 'two' })
  const { token } = await login(one)
  t.equal(await status(two, token), 'ok')
  t.equal(await logout(one, token), 204)
  const before = await counts(two)
  t.equal(await status(two, token), '401 unknown_session', 'refused on the other server')
  const after = await counts(two)
  t.same([after.ended - before.ended, after.update - before.update], [1, 0], 'from the marker, with no statement')
  t.same(await postgres.sql('SELECT count(*)::int AS n FROM sessions WHERE id = $1', [token], url), [{ n: 0 }], 'and the row is gone')
})

t.test('a fill that comes after a logout\'s marker does not put the session back (a read that raced the logout)', async (t) => {
  const config = loadServerConfig({ AUTH_MODE: 'postgres', SESSION_CACHE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'race:' })
  const app = Fastify({ logger: false })
  const cache = await createRedisSessionCache({ config, log: pino({ level: 'silent' }), metrics: createMetrics('race', 'postgres'), app, now: Date.now })
  t.teardown(async () => { await cache.close(); await app.close() })
  const entry = { user: 'alice', expiresAt: Date.now() + 60_000, idleUntil: Date.now() + 30_000, renewedAt: Date.now() }
  await cache.fill('s1', entry, 60_000, cache.fillToken())
  t.same(await cache.get('s1'), entry)
  await cache.end('s1')
  await cache.fill('s1', entry, 60_000, cache.fillToken())
  t.equal(await cache.get('s1'), ENDED, 'the marker stays')
})

t.test('Redis killed: reads go to the database (no 503), a logout is a 503 (the cache may still answer for it), and Redis back is used again', async (t) => {
  const own = await startRedis()
  t.teardown(async () => await own.stop())
  const url = await postgres.createDatabase()
  const app = await buildModeApp(t, 'postgres', url, cached(own.url, { SERVER_ID: 'solo' }))
  const { token } = await login(app)
  t.equal(await status(app, token), 'ok')
  const before = await counts(app)
  await own.stop('SIGKILL')
  const reads = await Promise.all(Array.from({ length: 10 }, async () => await timed(async () => await status(app, token))))
  t.same(reads.map((r) => r.answer), Array(10).fill('ok'), 'ten reads at once: all accepted, from the database')
  const during = await counts(app)
  t.equal(during.update - before.update, 10, 'ten UPDATEs: the database took every read')
  t.equal((during.bypass + during.error) - (before.bypass + before.error), 10, 'each counted as the cache bypassed or failed')
  t.ok(Math.max(...reads.map((r) => r.ms)) < 1000, `each within a second (slowest ${Math.round(Math.max(...reads.map((r) => r.ms)))} ms)`)
  t.equal(await logout(app, token), 503, 'logout: the row is deleted, but the cache could not be told: 503, to be sent again')
  t.same(await postgres.sql('SELECT count(*)::int AS n FROM sessions WHERE id = $1', [token], url), [{ n: 0 }], 'the row is gone')
  t.equal(await status(app, token), '401 unknown_session', 'and the database refuses the session')
  await own.start()
  const { token: fresh } = await login(app)
  t.ok(await eventually(async () => {
    await status(app, fresh)
    return (await counts(app)).hit > during.hit
  }, 5000), 'Redis back: hits again')
  t.equal(await logout(app, token), 204, 'and the logout sent again completes')
})

t.test('Redis frozen: a read waits the cache\'s timeout and then the database, once; the next reads skip the cache for a second', async (t) => {
  const own = await startRedis()
  t.teardown(async () => { own.resume(); await own.stop() })
  const url = await postgres.createDatabase()
  // A timeout long enough that a read which waited for it cannot pass for one slowed by a busy machine.
  const app = await buildModeApp(t, 'postgres', url, cached(own.url, { SERVER_ID: 'solo', REDIS_COMMAND_TIMEOUT_MS: '1000' }))
  const { token } = await login(app)
  t.equal(await status(app, token), 'ok')
  own.pause()
  const first = await timed(async () => await status(app, token))
  t.equal(first.answer, 'ok', 'the first read after the freeze is accepted, from the database')
  t.ok(first.ms >= 990 && first.ms < 2000, `after the cache's timeout, 1000 ms, plus the database (${Math.round(first.ms)} ms)`)
  const next = await Promise.all(Array.from({ length: 10 }, async () => await timed(async () => await status(app, token))))
  t.same(next.map((r) => r.answer), Array(10).fill('ok'))
  t.ok(Math.max(...next.map((r) => r.ms)) < 700, `the next ten skip the cache: none waits its 1000 ms (slowest ${Math.round(Math.max(...next.map((r) => r.ms)))} ms)`)
  own.resume()
  const hits = (await counts(app)).hit
  t.ok(await eventually(async () => {
    await status(app, token)
    return (await counts(app)).hit > hits
  }, 5000), 'thawed: hits again')
})

t.test('PostgreSQL frozen, the session in the cache: served for at most PG_QUERY_TIMEOUT_MS after the database last answered, then 503; killed: 503 at once', async (t) => {
  const own = await startPostgres()
  t.teardown(async () => { own.resume(); await own.remove() })
  const app = await buildModeApp(t, 'postgres', own.url, cached(redis.url, { SERVER_ID: 'solo', PG_QUERY_TIMEOUT_MS: '300' }))
  const { token } = await login(app)
  t.equal(await status(app, token), 'ok')
  own.pause()
  const frozenAt = performance.now()
  const answers: Array<{ answer: string, at: number }> = []
  while (performance.now() - frozenAt < 1200) {
    const { answer } = await timed(async () => await status(app, token))
    answers.push({ answer, at: performance.now() - frozenAt })
  }
  const lastOk = Math.max(0, ...answers.filter((a) => a.answer === 'ok').map((a) => a.at))
  t.ok(lastOk < 400, `the last acceptance came ${Math.round(lastOk)} ms after the freeze: within the lease (300 ms), plus the answer's way back`)
  const after = answers.filter((a) => a.at > 700)
  t.ok(after.length > 0 && after.every((a) => a.answer === '503 session_store_unavailable'), `then 503s (${[...new Set(answers.map((a) => a.answer))].join(', ')})`)
  t.equal(await logout(app, token), 503, 'a logout cannot be recorded: which is why the cache does not answer meanwhile')
  own.resume()
  t.ok(await eventually(async () => await status(app, token) === 'ok', 5000), 'thawed: the session works again')

  await own.stop('SIGKILL')
  t.ok(await eventually(async () => (await app.inject({ method: 'GET', url: '/health' })).json().store === 'down', 2000, 10), 'killed: the pool\'s broken connections mark the database down')
  const { answer, ms } = await timed(async () => await status(app, token))
  t.equal(answer, '503 session_store_unavailable', 'and the cached session is a 503')
  t.ok(ms < 1000, `in ${Math.round(ms)} ms`)
})
