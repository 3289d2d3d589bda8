import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { startRedis } from '../helpers/redis-server.ts'
import { buildModeApp, metricValue, scrapeMetrics, type Mode } from '../helpers/service-app.ts'

// Logins sent at the same moment: the throttle must count each attempt before its password is
// checked, or every one of them passes the check while the others are still hashing.

const redis = await startRedis()
t.teardown(async () => await redis.stop())

const ACCOUNT_LIMIT = 5
const ADDRESS_LIMIT = 8
const AT_ONCE = 40
const LIMITS = { LOGIN_MAX_FAILURES_PER_ACCOUNT: String(ACCOUNT_LIMIT), LOGIN_MAX_FAILURES_PER_ADDRESS: String(ADDRESS_LIMIT), LOGIN_THROTTLE_WINDOW_SECONDS: '60' }

/** The stores the counters can live in, and the modes that use each. */
const SETUPS: Array<{ label: string, mode: Mode, env: Record<string, string> }> = [
  { label: 'memory store (memory mode)', mode: 'memory', env: {} },
  { label: 'memory store (jwt mode)', mode: 'jwt', env: {} },
  { label: 'redis store (redis mode)', mode: 'redis', env: {} },
  { label: 'redis store (jwt mode, LOGIN_THROTTLE_STORE=redis)', mode: 'jwt', env: { LOGIN_THROTTLE_STORE: 'redis', REDIS_URL: redis.url } }
]

let prefixes = 0
/** An app whose password checks are counted: the number that matters, whatever the answers say. */
async function countingApp (t: Test, mode: Mode, env: Record<string, string>): Promise<{ app: FastifyInstance, checks: () => number }> {
  const app = await buildModeApp(t, mode, redis.url, { ...LIMITS, REDIS_KEY_PREFIX: `concurrency-${prefixes++}:`, ...env })
  let checks = 0
  const verify = app.users.verify.bind(app.users)
  app.users.verify = async (username, password) => {
    checks++
    return await verify(username, password)
  }
  return { app, checks: () => checks }
}

async function attempt (app: FastifyInstance, username: string, password: string, from: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: '/login', remoteAddress: from, payload: { username, password } })
}

function statuses (answers: LightMyRequestResponse[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const a of answers) counts[a.statusCode] = (counts[a.statusCode] ?? 0) + 1
  return counts
}

function checkRefusals (t: Test, answers: LightMyRequestResponse[], scope: 'account' | 'address'): void {
  const refused = answers.filter((a) => a.statusCode === 429)
  t.ok(refused.every((a) => Number(a.headers['retry-after']) >= 1 && Number(a.headers['retry-after']) <= 60), 'every 429 has a Retry-After within the window')
  t.ok(refused.every((a) => a.json().error === 'too_many_attempts' && a.json().retryAfter === Number(a.headers['retry-after'])), 'and the contract\'s body')
  t.ok(refused.every((a) => (a.json().message as string).includes(`for this ${scope}`)), `each names the ${scope}`)
}

for (const { label, mode, env } of SETUPS) {
  t.test(`${label}: ${AT_ONCE} wrong logins at once for one account: exactly ${ACCOUNT_LIMIT} reach the password check`, async (t) => {
    const { app, checks } = await countingApp(t, mode, { ...env, LOGIN_MAX_FAILURES_PER_ADDRESS: '1000' })
    const answers = await Promise.all(Array.from({ length: AT_ONCE }, async () => await attempt(app, 'alice', 'wrong', '203.0.113.7')))
    t.equal(checks(), ACCOUNT_LIMIT, 'password checks')
    t.same(statuses(answers), { 401: ACCOUNT_LIMIT, 429: AT_ONCE - ACCOUNT_LIMIT })
    checkRefusals(t, answers, 'account')
    const metrics = await scrapeMetrics(app)
    t.equal(metricValue(metrics, 'auth_logins_total', { result: 'invalid_credentials' }), ACCOUNT_LIMIT)
    t.equal(metricValue(metrics, 'auth_logins_total', { result: 'throttled' }), AT_ONCE - ACCOUNT_LIMIT)
    const right = await attempt(app, 'alice', 'wonderland', '198.51.100.1')
    t.equal(right.statusCode, 429, 'the right password from elsewhere is refused too, unchecked: the account is locked for the window')
    t.equal(checks(), ACCOUNT_LIMIT)
  })

  t.test(`${label}: ${AT_ONCE} wrong logins at once from one address, each for another account: exactly ${ADDRESS_LIMIT} reach the password check`, async (t) => {
    const { app, checks } = await countingApp(t, mode, env)
    const answers = await Promise.all(Array.from({ length: AT_ONCE }, async (_, i) => await attempt(app, `user${i}`, 'wrong', '192.0.2.1')))
    t.equal(checks(), ADDRESS_LIMIT, 'password checks')
    t.same(statuses(answers), { 401: ADDRESS_LIMIT, 429: AT_ONCE - ADDRESS_LIMIT })
    checkRefusals(t, answers, 'address')
    t.equal((await attempt(app, 'carol', 'lighthouse', '192.0.2.1')).statusCode, 429, 'the address is locked, whatever the account')
    t.equal((await attempt(app, 'carol', 'lighthouse', '192.0.2.2')).statusCode, 200, 'another address is not')
  })

  t.test(`${label}: IPv6 addresses are counted by their /64`, async (t) => {
    const { app, checks } = await countingApp(t, mode, env)
    const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => await attempt(app, `v6user${i}`, 'wrong', `2001:db8:7:7::${(i + 1).toString(16)}`)))
    t.equal(checks(), ADDRESS_LIMIT, 'twenty addresses of one /64 share one budget')
    t.same(statuses(answers), { 401: ADDRESS_LIMIT, 429: 20 - ADDRESS_LIMIT })
  })

  t.test(`${label}: a right password gives its attempt back, so only failures use the budget`, async (t) => {
    const { app, checks } = await countingApp(t, mode, env)
    for (let i = 0; i < ACCOUNT_LIMIT - 1; i++) t.equal((await attempt(app, 'alice', 'wrong', '198.51.100.7')).statusCode, 401)
    for (let i = 0; i < 3; i++) t.equal((await attempt(app, 'alice', 'wonderland', '198.51.100.7')).statusCode, 200, `right password ${i + 1}, one try short of the limit`)
    t.equal((await attempt(app, 'alice', 'wrong', '198.51.100.7')).statusCode, 401, `failure ${ACCOUNT_LIMIT} still reaches the check: the logins in between took nothing`)
    t.equal((await attempt(app, 'alice', 'wonderland', '198.51.100.7')).statusCode, 429, 'and now the account is locked')
    t.equal(checks(), ACCOUNT_LIMIT - 1 + 3 + 1)
  })

  t.test(`${label}: right passwords sent at once are counted while in flight, never past the limit`, async (t) => {
    const { app } = await countingApp(t, mode, env)
    const answers = await Promise.all(Array.from({ length: 12 }, async () => await attempt(app, 'alice', 'wonderland', '198.51.100.8')))
    const ok = answers.filter((a) => a.statusCode === 200).length
    t.ok(ok >= 1 && ok <= ACCOUNT_LIMIT, `${ok} succeed: at most ${ACCOUNT_LIMIT} are checked at a time`)
    t.same(statuses(answers), { 200: ok, ...(ok < 12 ? { 429: 12 - ok } : {}) }, 'the rest are 429, not errors')
    t.equal((await attempt(app, 'alice', 'wonderland', '198.51.100.8')).statusCode, 200, 'once they are done, every attempt is given back')
  })
}

t.test('memory store: each server counts alone, so N servers allow N times the limit (the weakness LOGIN_THROTTLE_STORE=redis removes)', async (t) => {
  const one = await countingApp(t, 'jwt', { SERVER_ID: 'one' })
  const two = await countingApp(t, 'jwt', { SERVER_ID: 'two' })
  await Promise.all(Array.from({ length: 20 }, async (_, i) => await attempt(i % 2 === 0 ? one.app : two.app, 'alice', 'wrong', '203.0.113.9')))
  t.same([one.checks(), two.checks()], [ACCOUNT_LIMIT, ACCOUNT_LIMIT])
})

t.test('redis store: servers share the counters, so the limit holds across them', async (t) => {
  const env = { LOGIN_THROTTLE_STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'concurrency-shared:' }
  const servers = await Promise.all(['one', 'two', 'three'].map(async (id) => await countingApp(t, 'jwt', { ...env, SERVER_ID: id })))
  const answers = await Promise.all(Array.from({ length: AT_ONCE }, async (_, i) => await attempt((servers[i % 3] as { app: FastifyInstance }).app, 'alice', 'wrong', '203.0.113.10')))
  t.equal(servers.reduce((sum, s) => sum + s.checks(), 0), ACCOUNT_LIMIT, 'password checks across the three servers')
  t.same(statuses(answers), { 401: ACCOUNT_LIMIT, 429: AT_ONCE - ACCOUNT_LIMIT })
})
