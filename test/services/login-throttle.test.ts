import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { connectStore } from '../../services/auth/redis-client.ts'
import { addressKey, createMemoryThrottle, type LoginThrottle, type ThrottleLimits, type ThrottleVerdict } from '../../services/login-throttle.ts'
import { createRedisThrottle } from '../../services/login-throttle-redis.ts'
import { startRedis } from '../helpers/redis-server.ts'
import { MODES, buildModeApp, metricValue, scrapeMetrics, sleep } from '../helpers/service-app.ts'

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

// Where the counters live is what differs between modes: memory for memory, jwt, cookie (and
// postgres, which has no throttle store of its own: it counts as memory mode does), Redis for redis.
for (const mode of MODES.filter((m) => m !== 'postgres')) {
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
    // Counters in this process read the app's clock, moved here; Redis's windows are its own PEXPIREs, in real time.
    let now = Date.now()
    const redisWindows = mode === 'redis'
    const app = await buildModeApp(t, mode, redis.url, { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1', LOGIN_THROTTLE_WINDOW_SECONDS: redisWindows ? '1' : '60', REDIS_KEY_PREFIX: `throttle-${mode}-window:` }, { now: () => now })
    t.equal((await attempt(app)).statusCode, 401)
    const refused = await attempt(app, { password: 'wonderland' })
    t.equal(refused.statusCode, 429)
    const wait = Number(refused.headers['retry-after']) * 1000
    if (redisWindows) await sleep(wait + 200)
    else {
      now += wait - 1000
      t.equal((await attempt(app, { password: 'wonderland' })).statusCode, 429, 'a second before the end of the window: still refused')
      now += 1000
    }
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

/** Each store, built directly, with a clock to move: the memory store's own, or real time for Redis. */
const STORES: Array<{ name: string, make: (t: Test, limits: ThrottleLimits) => Promise<{ throttle: LoginThrottle, advance: (ms: number) => Promise<void> }> }> = [
  {
    name: 'memory store',
    make: async (t, limits) => {
      let now = 1_000_000
      const throttle = createMemoryThrottle(limits, { now: () => now })
      t.teardown(() => { throttle.close() })
      return { throttle, advance: async (ms) => { now += ms } }
    }
  },
  {
    name: 'redis store',
    make: async (t, limits) => {
      const store = await connectStore({ url: redis.url, commandTimeoutMs: 500, log: pino({ level: 'silent' }), name: 'test' })
      const throttle = createRedisThrottle(limits, store, `store-test-${randomBytes(4).toString('hex')}:`)
      t.teardown(() => { throttle.close() })
      return { throttle, advance: sleep }
    }
  }
]

const allowed = (verdict: ThrottleVerdict): Extract<ThrottleVerdict, { allowed: true }> => {
  if (!verdict.allowed) throw new Error(`refused by ${verdict.scope}`)
  return verdict
}

for (const { name, make } of STORES) {
  t.test(`${name}: refused attempts count nowhere, so a lockout ends with its window`, async (t) => {
    const { throttle, advance } = await make(t, { windowSeconds: 1, maxFailuresPerAccount: 2, maxFailuresPerAddress: 3 })
    allowed(await throttle.count('alice', 'a'))
    allowed(await throttle.count('alice', 'b'))
    t.match(await throttle.count('alice', 'c'), { allowed: false, scope: 'account', retryAfterSeconds: 1 })
    for (let i = 0; i < 10; i++) await throttle.count('alice', 'c')
    allowed(await throttle.count('bob', 'c'))
    allowed(await throttle.count('carol', 'c'))
    allowed(await throttle.count('dave', 'c'))
    t.match(await throttle.count('erin', 'c'), { allowed: false, scope: 'address' }, 'the 11 refused for alice took nothing from address c: it reached its 3 with bob, carol and dave')
    await advance(1100)
    allowed(await throttle.count('alice', 'a'))
    allowed(await throttle.count('erin', 'c'))
  })

  t.test(`${name}: a give-back returns the attempt to its own window, and to no later one`, async (t) => {
    const { throttle, advance } = await make(t, { windowSeconds: 1, maxFailuresPerAccount: 2, maxFailuresPerAddress: 100 })
    const first = allowed(await throttle.count('alice', 'a'))
    allowed(await throttle.count('alice', 'a'))
    t.match(await throttle.count('alice', 'a'), { allowed: false })
    await first.giveBack()
    const third = allowed(await throttle.count('alice', 'a'))
    t.pass('given back in its window: one more attempt fits')

    await advance(1100)
    allowed(await throttle.count('alice', 'a'))
    allowed(await throttle.count('alice', 'a'))
    await third.giveBack()
    await third.giveBack()
    t.match(await throttle.count('alice', 'a'), { allowed: false, scope: 'account' }, 'give-backs that land after their window ended leave the next window as it is')
  })

  t.test(`${name}: 40 attempts at once, exactly the limit counted`, async (t) => {
    const { throttle } = await make(t, { windowSeconds: 60, maxFailuresPerAccount: 5, maxFailuresPerAddress: 100 })
    const verdicts = await Promise.all(Array.from({ length: 40 }, async () => await throttle.count('alice', 'a')))
    t.equal(verdicts.filter((v) => v.allowed).length, 5)
  })
}

t.test('redis store: a right password leaves no key behind; a failure leaves two, expiring with the window', async (t) => {
  const app = await buildModeApp(t, 'jwt', undefined, { LOGIN_THROTTLE_STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'leftovers:' })
  const client = await connectStore({ url: redis.url, commandTimeoutMs: 500, log: pino({ level: 'silent' }), name: 'test' })
  t.teardown(() => { client.close() })
  t.equal((await attempt(app, { password: 'wonderland' })).statusCode, 200)
  t.same(await client.redis.keys('leftovers:*'), [])
  t.equal((await attempt(app)).statusCode, 401)
  t.same((await client.redis.keys('leftovers:*')).sort(), ['leftovers:login-attempts:account:alice', 'leftovers:login-attempts:address:203.0.113.7'])
  const ttl = await client.redis.pttl('leftovers:login-attempts:account:alice')
  t.ok(ttl > 55_000 && ttl <= 60_000, `expires with the 60 s window (${ttl} ms left)`)
  t.equal((await attempt(app, { password: 'wonderland' })).statusCode, 200)
  t.equal(await client.redis.hget('leftovers:login-attempts:account:alice', 'n'), '1', 'a right password after it leaves the failure counted')
})

t.test('memory store: counters do not grow without end', async (t) => {
  const throttle = createMemoryThrottle({ windowSeconds: 60, maxFailuresPerAccount: 1, maxFailuresPerAddress: 100 }, { maxEntries: 3 })
  t.teardown(() => { throttle.close() })
  t.match(await throttle.count('alice', 'x'), { allowed: true })
  t.match(await throttle.count('alice', 'x'), { allowed: false })
  for (let i = 0; i < 10; i++) await throttle.count(`user${i}`, `addr${i}`)
  t.match(await throttle.count('alice', 'x'), { allowed: true }, 'past maxEntries the oldest counters are dropped first')
})

t.test('redis store down or hung: logins are a 503 within the command timeout, never unthrottled', async (t) => {
  const own = await startRedis()
  t.teardown(async () => await own.stop())
  // jwt mode needs Redis for nothing else: every 503 here is the throttle's.
  const app = await buildModeApp(t, 'jwt', undefined, { LOGIN_THROTTLE_STORE: 'redis', REDIS_URL: own.url, REDIS_COMMAND_TIMEOUT_MS: '300' })
  t.equal((await attempt(app, { password: 'wonderland' })).statusCode, 200, 'works while Redis does')

  const outage = async (what: string): Promise<void> => {
    const started = performance.now()
    const answers = await Promise.all([attempt(app), attempt(app, { password: 'wonderland' })])
    const ms = performance.now() - started
    t.same(answers.map((a) => a.statusCode), [503, 503], `${what}: a wrong and a right password, both refused unchecked`)
    t.same(answers.map((a) => a.json().error), ['session_store_unavailable', 'session_store_unavailable'])
    t.equal(answers[0]?.headers['retry-after'], '1')
    t.ok(ms < 1000, `${what}: answered in ${ms.toFixed(0)} ms`)
  }
  own.pause()
  await outage('Redis hung (SIGSTOP)')
  own.resume()
  await own.stop('SIGKILL')
  await outage('Redis killed')
  t.equal(metricValue(await scrapeMetrics(app), 'auth_logins_total', { result: 'unavailable' }), 4, 'counted as unavailable')
  t.equal(metricValue(await scrapeMetrics(app), 'auth_logins_total', { result: 'invalid_credentials' }), 0, 'no password was checked')
})

t.test('addressKey: IPv4 as is, IPv4-mapped unwrapped, IPv6 by its /64', async (t) => {
  t.equal(addressKey('192.0.2.1'), '192.0.2.1')
  t.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1')
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8:1:2::99'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(addressKey('::1'), '0:0:0:0::/64')
})
