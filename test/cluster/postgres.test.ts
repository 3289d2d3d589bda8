import t from 'tap'
import { call, eventually, feeds, feedsTimes, login, tally, withCluster } from '../helpers/cluster.ts'
import { metricValue } from '../helpers/service-app.ts'

/** The token with one character changed: still a well-formed id, of no session. */
const tampered = (token: string): string => `${token[0] === 'A' ? 'B' : 'A'}${token.slice(1)}`

t.test('postgres mode: every server accepts the session, a tampered one is refused, and logout ends it everywhere', async (t) => {
  const cluster = await withCluster(t, { mode: 'postgres', servers: 3 })
  t.ok(cluster.postgres, 'a private PostgreSQL was started')
  t.equal(cluster.databaseUrl, cluster.postgres?.url, 'and the servers were given it')
  const { token } = await login(cluster.url)

  const answers = await feedsTimes(cluster.url, token, 30)
  t.same(tally(answers), { 'app-1': { 200: 10 }, 'app-2': { 200: 10 }, 'app-3': { 200: 10 } }, 'all 30 succeed, 10 on each server')
  t.ok(answers.every((a) => a.body.user === 'alice'))

  const forged = await feedsTimes(cluster.url, tampered(token), 3)
  t.same(forged.map((a) => [a.status, a.body.reason]), Array(3).fill([401, 'unknown_session']), 'one character changed: 401 on every server')

  const logout = await call(`${cluster.url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.equal(logout.status, 204)
  const after = await feedsTimes(cluster.url, token, 6)
  t.ok(after.every((a) => a.status === 401 && a.body.reason === 'unknown_session'), 'refused by every server after logout')
  t.equal(new Set(after.map((a) => a.servedBy)).size, 3, 'the refusals come from all three servers')
})

t.test('postgres mode: PostgreSQL restarted, the sessions are kept; killed, a 503 within a second on every server, and back by itself', async (t) => {
  const cluster = await withCluster(t, { mode: 'postgres', servers: 3 })
  const postgres = cluster.postgres
  if (postgres === undefined) throw new Error('expected a private PostgreSQL')
  const { token } = await login(cluster.url)
  t.equal((await feeds(cluster.url, token)).status, 200)

  await postgres.stop()
  await postgres.start()
  t.ok(await eventually(async () => (await feedsTimes(cluster.url, token, 3)).every((a) => a.status === 200), 10_000, 100),
    'after a restart, the session from before works on every server')

  await postgres.kill()
  const during = await Promise.all([0, 1, 2].map(async () => await feeds(cluster.url, token)))
  t.same(new Set(during.map((a) => a.servedBy)).size, 3, 'asked of all three servers')
  for (const answer of during) {
    t.equal(answer.status, 503, `${answer.servedBy ?? '?'} answers 503`)
    t.equal(answer.body.error, 'session_store_unavailable')
    t.ok(answer.ms < 1000, `within a second (${answer.ms.toFixed(0)} ms)`)
  }
  await postgres.start()
  t.ok(await eventually(async () => (await feedsTimes(cluster.url, token, 3)).every((a) => a.status === 200), 10_000, 100),
    'after PostgreSQL returns, the same session works on every server again: it was on disk')
})

t.test('postgres mode under load: one statement per request, by the servers\' own count', async (t) => {
  const cluster = await withCluster(t, { mode: 'postgres', servers: 3 })
  const tokens = await Promise.all([0, 1, 2, 3].map(async () => (await login(cluster.url)).token))
  const counts = async (): Promise<{ ok: number, update: number, other: number }> => {
    const texts = await Promise.all(cluster.servers.map(async (s) => await (await fetch(`${s.url}/metrics`)).text()))
    const sum = (name: string, labels: Record<string, string>): number => texts.reduce((n, text) => n + metricValue(text, name, labels), 0)
    return { ok: sum('auth_outcomes_total', { outcome: 'ok' }), update: sum('session_store_commands_total', { command: 'update' }), other: sum('session_store_commands_total', { command: 'insert' }) + sum('session_store_commands_total', { command: 'delete' }) }
  }
  const before = await counts()
  // 16 in flight at a time, 320 in all.
  for (let round = 0; round < 20; round++) {
    const answers = await Promise.all(Array.from({ length: 16 }, async (_, i) => await feeds(cluster.url, tokens[i % tokens.length] ?? '')))
    if (answers.some((a) => a.status !== 200)) t.fail(`round ${round}: ${answers.map((a) => a.status).join(' ')}`)
  }
  const after = await counts()
  t.equal(after.ok - before.ok, 320, '320 authenticated requests')
  t.equal(after.update - before.update, 320, 'and 320 UPDATEs: one round trip each, the lookup and the renewal together')
  t.equal(after.other - before.other, 0, 'nothing else')
})
