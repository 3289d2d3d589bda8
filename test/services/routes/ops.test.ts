import t from 'tap'
import { buildModeApp, metricValue, type Mode } from '../../helpers/service-app.ts'
import { startPostgres } from '../../helpers/postgres-server.ts'
import { startRedis } from '../../helpers/redis-server.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())
const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())

const STORE: Record<Mode, string> = { memory: 'none', redis: 'up', postgres: 'up', jwt: 'none', cookie: 'none' }

for (const mode of ['memory', 'redis', 'postgres', 'jwt', 'cookie'] as const) {
  t.test(`${mode} mode`, async (t) => {
    const app = await buildModeApp(t, mode, mode === 'postgres' ? postgres.url : redis.url)

    t.test('GET /health: 200 ok with the server, the mode and the state of its store', async (t) => {
      const res = await app.inject({ method: 'GET', url: '/health' })
      t.equal(res.statusCode, 200)
      t.equal(res.headers['x-served-by'], `app-${mode}`)
      t.same(res.json(), { status: 'ok', servedBy: `app-${mode}`, mode, store: STORE[mode] })
    })

    t.test('GET /health needs no credential and ignores a bad one', async (t) => {
      const res = await app.inject({ method: 'GET', url: '/health', headers: { authorization: 'Bearer garbage' } })
      t.equal(res.statusCode, 200)
    })

    t.test('GET /metrics: Prometheus text labelled with this server and mode', async (t) => {
      const res = await app.inject({ method: 'GET', url: '/metrics' })
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
      t.equal(res.headers['x-served-by'], `app-${mode}`)
      t.match(res.body, '# TYPE auth_outcomes_total counter')
      t.match(res.body, '# TYPE auth_logins_total counter')
      t.match(res.body, '# TYPE auth_duration_seconds histogram')
      t.match(res.body, /^process_cpu_user_seconds_total\{server="app-[a-z]+",mode="[a-z]+"\} /m, 'process metrics too, with the default labels')
      t.ok(metricValue(res.body, 'process_cpu_user_seconds_total', { server: `app-${mode}`, mode }) > 0)
      for (const line of res.body.split('\n')) {
        if (line === '' || line.startsWith('#')) continue
        if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfNa]+$/.test(line)) t.fail(`not a Prometheus sample line: ${line}`)
      }
    })
  })
}

t.test('two apps in one process keep separate metrics', async (t) => {
  const a = await buildModeApp(t, 'memory', undefined, { SERVER_ID: 'one' })
  const b = await buildModeApp(t, 'memory', undefined, { SERVER_ID: 'two' })
  await a.inject({ method: 'GET', url: '/feeds' })
  const textA = (await a.inject({ method: 'GET', url: '/metrics' })).body
  const textB = (await b.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(metricValue(textA, 'auth_outcomes_total', { reason: 'missing_token', server: 'one' }), 1)
  t.equal(metricValue(textB, 'auth_outcomes_total', { reason: 'missing_token' }), 0, "b did not see a's request")
  t.notMatch(textB, 'server="one"')
})
