import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { addressKey, createMemoryThrottle } from '../../services/login-throttle.ts'
import { startRedis } from '../helpers/redis-server.ts'
import { buildModeApp, metricValue, scrapeMetrics, sleep, type Mode } from '../helpers/service-app.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())

interface Attempt { username?: string, password?: string, from?: string, forwardedFor?: string }

async function attempt (app: FastifyInstance, { username = 'alice', password = 'wrong', from = '203.0.113.7', forwardedFor }: Attempt = {}) {
  return await app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress: from,
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
    payload: { username, password }
  })
}

// A window long enough that a slow machine's logins all land in it.
const LIMITS = { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_ADDRESS: '5', LOGIN_THROTTLE_WINDOW_SECONDS: '60' }

for (const mode of ['memory', 'redis', 'jwt'] as Mode[]) {
  t.test(`${mode} mode: per account, failed logins past the limit get a 429 with Retry-After, even with the right password`, async (t) => {
    const app = await buildModeApp(t, mode, redis.url, { ...LIMITS, REDIS_KEY_PREFIX: `throttle-${mode}-account:` })
    for (let i = 0; i < 3; i++) t.equal((await attempt(app, { from: `198.51.100.${i}` })).statusCode, 401, `failure ${i + 1}, each from another address`)
    const refused = await attempt(app, { password: 'wonderland', from: '198.51.100.99' })
    t.equal(refused.statusCode, 429, 'the fourth try is refused before the password is checked')
    t.match(refused.json(), { error: 'too_many_attempts', retryAfter: Number, servedBy: `app-${mode}` })
    const retryAfter = Number(refused.headers['retry-after'])
    t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} s is within the 60 s window`)
    t.equal(refused.json().retryAfter, retryAfter)
    t.equal(refused.headers['cache-control'], 'no-store')
    t.notOk(refused.headers['set-cookie'], 'no credential')
    t.equal((await attempt(app, { username: 'bob', password: 'builder', from: '198.51.100.99' })).statusCode, 200, 'another account is not affected')
    t.equal(metricValue(await scrapeMetrics(app), 'auth_logins_total', { result: 'throttled' }), 1, 'counted as throttled')
  })

  t.test(`${mode} mode: a lockout ends with its window`, async (t) => {
    const app = await buildModeApp(t, mode, redis.url, { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1', LOGIN_THROTTLE_WINDOW_SECONDS: '3', REDIS_KEY_PREFIX: `throttle-${mode}-window:` })
    t.equal((await attempt(app)).statusCode, 401)
    const refused = await attempt(app, { password: 'wonderland' })
    t.equal(refused.statusCode, 429)
    await sleep(Number(refused.headers['retry-after']) * 1000 + 200)
    t.equal((await attempt(app, { password: 'wonderland' })).statusCode, 200, 'once the window is over, alice logs in: a lockout cannot outlast its window')
  })

  t.test(`${mode} mode: per address, failures across many accounts get that address a 429`, async (t) => {
    const app = await buildModeApp(t, mode, redis.url, { ...LIMITS, REDIS_KEY_PREFIX: `throttle-${mode}-address:` })
    for (let i = 0; i < 5; i++) t.equal((await attempt(app, { username: `user${i}`, from: '192.0.2.1' })).statusCode, 401)
    const refused = await attempt(app, { username: 'carol', password: 'lighthouse', from: '192.0.2.1' })
    t.equal(refused.statusCode, 429, 'a sixth account from the same address is refused')
    t.match(refused.json().message, /for this address/)
    t.equal((await attempt(app, { username: 'carol', password: 'lighthouse', from: '192.0.2.2' })).statusCode, 200, 'the same login from another address works')
  })
}

t.test('redis mode: the counters are shared, so every server enforces the same limit', async (t) => {
  const env = { ...LIMITS, REDIS_KEY_PREFIX: 'throttle-shared:', LOGIN_THROTTLE_WINDOW_SECONDS: '30' }
  const one = await buildModeApp(t, 'redis', redis.url, { ...env, SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'redis', redis.url, { ...env, SERVER_ID: 'two' })
  await attempt(one)
  await attempt(two)
  await attempt(one)
  t.equal((await attempt(two, { password: 'wonderland' })).statusCode, 429, 'three failures spread over two servers lock the account on both')
})

t.test('memory mode: each server counts alone (the weakness the README names)', async (t) => {
  const one = await buildModeApp(t, 'memory', undefined, { ...LIMITS, SERVER_ID: 'one' })
  const two = await buildModeApp(t, 'memory', undefined, { ...LIMITS, SERVER_ID: 'two' })
  for (let i = 0; i < 3; i++) await attempt(one)
  t.equal((await attempt(one)).statusCode, 429)
  t.equal((await attempt(two)).statusCode, 401, 'the other server has seen no failure: a guesser behind round robin gets N times the tries')
})

t.test('X-Forwarded-For is believed only from a trusted proxy (TRUST_PROXY, loopback and private ranges by default)', async (t) => {
  const app = await buildModeApp(t, 'memory', undefined, { ...LIMITS })
  for (let i = 0; i < 5; i++) await attempt(app, { username: `u${i}`, from: '127.0.0.1', forwardedFor: '192.0.2.50' })
  t.equal((await attempt(app, { username: 'x', from: '127.0.0.1', forwardedFor: '192.0.2.50' })).statusCode, 429, 'through the balancer, the client address counts')
  t.equal((await attempt(app, { username: 'y', from: '127.0.0.1', forwardedFor: '192.0.2.51' })).statusCode, 401, 'another client through the same balancer is not affected')

  for (let i = 0; i < 5; i++) await attempt(app, { username: `v${i}`, from: '203.0.113.9', forwardedFor: `192.0.2.${100 + i}` })
  t.equal((await attempt(app, { username: 'z', from: '203.0.113.9', forwardedFor: '192.0.2.200' })).statusCode, 429,
    'a client that is not a trusted proxy cannot dodge the limit by inventing X-Forwarded-For')

  const trusting = await buildModeApp(t, 'memory', undefined, { ...LIMITS, TRUST_PROXY: '10.1.2.3', SERVER_ID: 'behind-10' })
  for (let i = 0; i < 5; i++) await attempt(trusting, { username: `w${i}`, from: '127.0.0.1', forwardedFor: `192.0.2.${i}` })
  t.equal((await attempt(trusting, { username: 'w9', from: '127.0.0.1', forwardedFor: '192.0.2.9' })).statusCode, 429, 'with TRUST_PROXY=10.1.2.3, loopback is no longer trusted')
})

t.test('a lockout is bounded and counters do not grow without end', async (t) => {
  const throttle = createMemoryThrottle({ windowSeconds: 1, maxFailuresPerAccount: 2, maxFailuresPerAddress: 100 }, 3)
  await throttle.recordFailure('alice', 'a')
  await throttle.recordFailure('alice', 'a')
  t.match(await throttle.check('alice', 'a'), { allowed: false, scope: 'account', retryAfterSeconds: 1 })
  for (let i = 0; i < 10; i++) await throttle.check('alice', 'b')
  t.match(await throttle.check('alice', 'c'), { allowed: false }, 'refused attempts are not counted, so they do not extend the lockout')
  await sleep(1050)
  t.same(await throttle.check('alice', 'a'), { allowed: true }, 'over when the window is')
  for (let i = 0; i < 10; i++) await throttle.recordFailure(`user${i}`, `addr${i}`)
  t.same(await throttle.check('user0', 'addr0'), { allowed: true }, 'past maxEntries the oldest counters are dropped first')
})

t.test('addressKey: IPv4 as is, IPv4-mapped unwrapped, IPv6 by its /64', async (t) => {
  t.equal(addressKey('192.0.2.1'), '192.0.2.1')
  t.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1')
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8:1:2::99'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(addressKey('::1'), '0:0:0:0::/64')
})
