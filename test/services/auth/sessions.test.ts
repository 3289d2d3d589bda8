import Fastify from 'fastify'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import type { Authenticator } from '../../../services/auth/authenticator.ts'
import { authenticators } from '../../../services/auth/index.ts'
import { createSessionAuthenticator, type FoundSession, type Session, type SessionStore } from '../../../services/auth/sessions.ts'
import { loadServerConfig } from '../../../services/config.ts'
import { createMetrics } from '../../../services/metrics.ts'
import { startPostgres } from '../../helpers/postgres-server.ts'
import { startRedis } from '../../helpers/redis-server.ts'
import { metricValue } from '../../helpers/service-app.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())
const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())

/** A clock the test moves, in seconds. */
function testClock (): { now: () => number, advance: (seconds: number) => void } {
  let now = Date.now()
  return { now: () => now, advance: (seconds) => { now += seconds * 1000 } }
}

/** A mode's real authenticator, built as the authenticator plugin builds it, on a clock the test moves. */
async function build (t: Test, mode: 'memory' | 'redis' | 'postgres', env: Record<string, string>, now: () => number): Promise<{ authenticator: Authenticator, commands: () => Promise<number> }> {
  const database = mode === 'postgres' ? { DATABASE_URL: await postgres.createDatabase() } : {}
  const config = loadServerConfig({ AUTH_MODE: mode, SERVER_ID: 'sessions-test', REDIS_URL: redis.url, REDIS_KEY_PREFIX: `sessions-test-${Math.random()}:`, ...database, ...env })
  const app = Fastify({ logger: false })
  const metrics = createMetrics(config.serverId, mode)
  const authenticator = await (await authenticators[mode]())({ config, log: pino({ level: 'silent' }), metrics, app, now })
  t.teardown(async () => { await authenticator.close(); await app.close() })
  const commands = async (): Promise<number> => {
    const text = await metrics.registry.metrics()
    return ['getex', 'set', 'del', 'update', 'insert', 'delete'].reduce((n, command) => n + metricValue(text, 'session_store_commands_total', { command }), 0)
  }
  return { authenticator, commands }
}

const reasonOf = (verdict: Awaited<ReturnType<Authenticator['verify']>>): string => verdict.ok ? 'ok' : verdict.reason

for (const mode of ['memory', 'redis', 'postgres'] as const) {
  t.test(`${mode}: requests at once on a session past its absolute timeout are all refused`, async (t) => {
    const clock = testClock()
    const { authenticator } = await build(t, mode, { SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '60' }, clock.now)
    const { token } = await authenticator.login('alice')
    clock.advance(60)
    const verdicts = await Promise.all(Array.from({ length: 20 }, async () => await authenticator.verify(token)))
    const reasons = new Set(verdicts.map(reasonOf))
    t.notOk(reasons.has('ok'), `none accepted (${[...reasons].join(', ')})`)
    t.ok(reasons.has('expired'), 'the first to find it says expired')
    t.equal(reasonOf(await authenticator.verify(token)), 'unknown_session', 'then it is gone')
  })

  t.test(`${mode}: the absolute timeout counts from login, on the clock it was given`, async (t) => {
    const clock = testClock()
    const { authenticator } = await build(t, mode, { SESSION_TTL_SECONDS: '2', SESSION_IDLE_SECONDS: '2' }, clock.now)
    const { token, expiresIn } = await authenticator.login('bob')
    t.equal(expiresIn, 2)
    const answers: string[] = []
    for (let i = 0; i < 4; i++) {
      clock.advance(0.5)
      answers.push(reasonOf(await authenticator.verify(token)))
    }
    t.same(answers, ['ok', 'ok', 'ok', 'expired'], 'used every 0.5 s, refused at 2 s')
  })

  t.test(`${mode}: a token that could never be a session id costs no store command; logout of one does nothing`, async (t) => {
    const { authenticator, commands } = await build(t, mode, {}, Date.now)
    t.equal(reasonOf(await authenticator.verify('not-a-session-id')), 'invalid_token')
    await authenticator.logout('not-a-session-id')
    t.equal(await commands(), 0)
    t.equal(reasonOf(await authenticator.verify('Q'.repeat(43))), 'unknown_session')
    t.equal(await commands(), mode === 'memory' ? 0 : 1, 'a well-formed one is looked up, once')
  })
}

t.test('memory: requests at once on a session past its idle timeout are all refused: the first touch does not renew it for the others', async (t) => {
  const clock = testClock()
  const { authenticator } = await build(t, 'memory', { SESSION_TTL_SECONDS: '600', SESSION_IDLE_SECONDS: '60' }, clock.now)
  const { token } = await authenticator.login('carol')
  clock.advance(60)
  const verdicts = await Promise.all(Array.from({ length: 20 }, async () => await authenticator.verify(token)))
  t.notOk(verdicts.some((v) => v.ok), `none accepted (${[...new Set(verdicts.map(reasonOf))].join(', ')})`)
})

/** A store of the test's own, which records every call: what the session rules ask of any store. */
function recordingStore (): SessionStore & { calls: string[], held: Map<string, FoundSession> } {
  const held = new Map<string, FoundSession>()
  const calls: string[] = []
  return {
    calls,
    held,
    async create (id: string, session: Session, at: number) { calls.push('create'); held.set(id, { ...session, idleUntil: at + 10_000 }) },
    async touch (id: string) { calls.push('touch'); return held.get(id) },
    async delete (id: string) { calls.push('delete'); held.delete(id) },
    status: () => 'up',
    async close () { calls.push('close') }
  }
}

t.test('the session rules over any store: one touch per request, expired ones deleted, nothing else asked', async (t) => {
  const store = recordingStore()
  const clock = testClock()
  const config = loadServerConfig({ AUTH_MODE: 'memory', SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '10' })
  const app = Fastify({ logger: false })
  t.teardown(async () => await app.close())
  const authenticator = await createSessionAuthenticator('memory', async () => store)({ config, log: app.log, metrics: createMetrics('x', 'memory'), app, now: clock.now })

  const { token } = await authenticator.login('alice')
  t.same(store.held.get(token), { user: 'alice', expiresAt: clock.now() + 60_000, idleUntil: clock.now() + 10_000 }, 'login: the user, its absolute end, its idle window from now')
  t.same(reasonOf(await authenticator.verify(token)), 'ok')
  t.same(store.calls, ['create', 'touch'], 'a request is one touch: read and renew in one round trip')

  clock.advance(10)
  t.equal(reasonOf(await authenticator.verify(token)), 'expired', 'found past its idle window (as the store saw it before the touch): expired')
  t.same(store.calls.slice(2), ['touch', 'delete'], 'and deleted')

  const second = await authenticator.login('bob')
  const found = store.held.get(second.token)
  if (found !== undefined) delete found.idleUntil
  clock.advance(59.9)
  t.equal(reasonOf(await authenticator.verify(second.token)), 'ok', 'a store with no idle window of its own (Redis drops idle keys itself) is held to the absolute timeout only')
  clock.advance(0.1)
  t.equal(reasonOf(await authenticator.verify(second.token)), 'expired')

  t.equal(authenticator.storeStatus(), 'up', "the store's status")
  await authenticator.close()
  t.equal(store.calls.at(-1), 'close')
})
