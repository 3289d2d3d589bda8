import t from 'tap'
import type { ClusterOptions } from '../../scripts/cluster.ts'
import { metricValue } from '../helpers/service-app.ts'
import { call, feeds, login, withCluster, type Answer } from '../helpers/cluster.ts'

// Through the real balancer to three real app servers: wrong passwords sent all at once. Every
// one comes through the balancer, so every server sees the same client address (127.0.0.1 in
// X-Forwarded-For): the account limit (5) is the one that bites, before the address limit (20).

const AT_ONCE = 40
const ACCOUNT_LIMIT = 5

async function wrongLogin (url: string): Promise<Answer & { retryAfter: string | null }> {
  const started = performance.now()
  const res = await fetch(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'guess' }),
    signal: AbortSignal.timeout(10_000)
  })
  return { status: res.status, servedBy: res.headers.get('x-served-by'), retryAfter: res.headers.get('retry-after'), body: await res.json() as Record<string, unknown>, ms: performance.now() - started }
}

/** How many passwords each server checked and found wrong, from its own /metrics. */
async function passwordChecks (servers: Array<{ id: string, url: string }>): Promise<Record<string, number>> {
  const checks: Record<string, number> = {}
  for (const server of servers) {
    const text = await (await fetch(`${server.url}/metrics`)).text()
    checks[server.id] = metricValue(text, 'auth_logins_total', { result: 'invalid_credentials' })
  }
  return checks
}

const SETUPS: Array<{ label: string, options: ClusterOptions, shared: boolean }> = [
  { label: 'redis mode: counters in Redis, shared by the servers', options: { mode: 'redis' }, shared: true },
  { label: 'jwt mode with LOGIN_THROTTLE_STORE=redis: counters shared', options: { mode: 'jwt', loginThrottleStore: 'redis' }, shared: true },
  { label: 'memory mode: each server counts alone', options: { mode: 'memory' }, shared: false },
  { label: 'jwt mode: each server counts alone (the default without Redis)', options: { mode: 'jwt' }, shared: false }
]

for (const { label, options, shared } of SETUPS) {
  t.test(`${label}: ${AT_ONCE} wrong logins for alice at once`, async (t) => {
    const cluster = await withCluster(t, { ...options, servers: 3 })
    const answers = await Promise.all(Array.from({ length: AT_ONCE }, async () => await wrongLogin(cluster.url)))
    const checks = await passwordChecks(cluster.servers)
    const total = Object.values(checks).reduce((a, b) => a + b, 0)
    if (shared) {
      t.equal(total, ACCOUNT_LIMIT, `${ACCOUNT_LIMIT} password checks across the cluster (${JSON.stringify(checks)})`)
    } else {
      for (const [id, n] of Object.entries(checks)) t.ok(n <= ACCOUNT_LIMIT, `${id} checked ${n} passwords, at most ${ACCOUNT_LIMIT}`)
      t.equal(total, 3 * ACCOUNT_LIMIT, 'each server, reached about 13 times, used its whole budget: 3 times the limit across the cluster')
    }
    const refused = answers.filter((a) => a.status === 429)
    t.equal(answers.filter((a) => a.status === 401).length, total, 'a 401 for each password checked')
    t.equal(refused.length, AT_ONCE - total, 'a 429 for every other attempt: no 5xx, no 200')
    t.ok(refused.every((a) => Number(a.retryAfter) >= 1 && Number(a.retryAfter) <= 60 && a.body.retryAfter === Number(a.retryAfter)), 'each 429 has Retry-After, also in its body')
    t.ok(refused.every((a) => a.body.error === 'too_many_attempts' && a.body.servedBy === a.servedBy), 'and the contract\'s shape')
  })
}

t.test('jwt mode with LOGIN_THROTTLE_STORE=redis: the launcher starts a private Redis for the counters', async (t) => {
  const cluster = await withCluster(t, { mode: 'jwt', loginThrottleStore: 'redis', servers: 2 })
  const redis = cluster.redis
  if (redis === undefined) throw new Error('expected a private redis-server')
  t.equal(cluster.redisUrl, redis.url)
  const { token } = await login(cluster.url)

  await redis.kill()
  const during = await Promise.all(Array.from({ length: 6 }, async () => await call(`${cluster.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'wonderland' })
  })))
  for (const answer of during) {
    t.equal(answer.status, 503, `${answer.servedBy ?? '?'}: a login with its counters unreachable is refused (fail closed), not checked`)
    t.ok(answer.ms < 1000, `within a second (${answer.ms.toFixed(0)} ms)`)
  }
  t.ok(during.every((a) => a.body.error === 'session_store_unavailable'), 'the store-down answer')
  t.equal((await feeds(cluster.url, token)).status, 200, 'a token issued before still works: only logins need the counters')
})
