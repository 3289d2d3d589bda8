import t from 'tap'
import { call, eventually, feeds, feedsTimes, login, tally, withCluster } from '../helpers/cluster.ts'

t.test('redis mode: every server accepts the session, and logout ends it everywhere', async (t) => {
  const cluster = await withCluster(t, { mode: 'redis', servers: 3 })
  t.ok(cluster.redis, 'a private redis-server was started')
  const { token } = await login(cluster.url)

  const answers = await feedsTimes(cluster.url, token, 30)
  t.same(tally(answers), { 'app-1': { 200: 10 }, 'app-2': { 200: 10 }, 'app-3': { 200: 10 } }, 'all 30 succeed, 10 on each server')

  const logout = await call(`${cluster.url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.equal(logout.status, 204)
  const after = await feedsTimes(cluster.url, token, 6)
  t.ok(after.every((a) => a.status === 401 && a.body.reason === 'unknown_session'), 'refused by every server after logout')
  t.equal(new Set(after.map((a) => a.servedBy)).size, 3, 'the refusals come from all three servers')
})

t.test('redis mode: a Redis outage is a fast 503, and service comes back by itself', async (t) => {
  const cluster = await withCluster(t, { mode: 'redis', servers: 3 })
  const redis = cluster.redis
  if (redis === undefined) throw new Error('expected a private redis')
  const { token } = await login(cluster.url)
  t.equal((await feeds(cluster.url, token)).status, 200)

  await redis.kill()
  const during = await Promise.all([0, 1, 2].map(async () => await feeds(cluster.url, token)))
  for (const answer of during) {
    t.equal(answer.status, 503, `${answer.servedBy ?? '?'} answers 503`)
    t.equal(answer.body.error, 'session_store_unavailable')
    t.ok(answer.ms < 1000, `within a second (${answer.ms.toFixed(0)} ms)`)
  }
  const loginDuring = await call(`${cluster.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'wonderland' }) })
  t.equal(loginDuring.status, 503, 'logging in needs the store too')
  t.ok(loginDuring.ms < 1000, `login refused fast (${loginDuring.ms.toFixed(0)} ms)`)

  await redis.start()
  // This redis keeps nothing on disk, so the old session is gone: a new login must work on every server.
  t.ok(await eventually(async () => {
    const fresh = await login(cluster.url)
    const answers = await feedsTimes(cluster.url, fresh.token, 3)
    return answers.every((a) => a.status === 200)
  }, 10_000, 100), 'after Redis returns, log in and read the feed on every server')
})
