import t from 'tap'
import { createMetrics } from '../../services/metrics.ts'
import { startRedis } from '../helpers/redis-server.ts'
import { buildModeApp, feedsWithBearer, login, metricValue, scrapeMetrics } from '../helpers/service-app.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())

const commands = (text: string, command?: string): number =>
  command === undefined
    ? ['getex', 'set', 'del', 'exists'].reduce((n, c) => n + metricValue(text, 'session_store_commands_total', { command: c }), 0)
    : metricValue(text, 'session_store_commands_total', { command })

t.test('session_store_commands_total is in every registry, labelled with the server and mode', async (t) => {
  const metrics = createMetrics('app-9', 'redis')
  metrics.sessionStoreCommands.inc({ command: 'getex' })
  const text = await metrics.registry.metrics()
  t.match(text, '# TYPE session_store_commands_total counter')
  t.equal(metricValue(text, 'session_store_commands_total', { command: 'getex', server: 'app-9', mode: 'redis' }), 1)
})

t.test('redis mode: one SET per login, one GETEX per authenticated request, one DEL per logout', async (t) => {
  const app = await buildModeApp(t, 'redis', redis.url)
  const { token } = await login(app)
  t.equal(commands(await scrapeMetrics(app), 'set'), 1, 'the login stored the session')
  for (let i = 0; i < 5; i++) t.equal((await feedsWithBearer(app, token)).statusCode, 200)
  await feedsWithBearer(app, 'Z'.repeat(43))
  const text = await scrapeMetrics(app)
  t.equal(commands(text, 'getex'), 6, 'five good requests and one unknown session: six lookups')
  t.equal(metricValue(text, 'auth_outcomes_total', { outcome: 'ok' }) + metricValue(text, 'auth_outcomes_total', { outcome: 'unauthorized' }), 6,
    'so commands per authenticated request is exactly 1')

  await feedsWithBearer(app, 'not-a-session-id')
  t.equal(commands(await scrapeMetrics(app), 'getex'), 6, 'a token that could never be a session id costs no command')

  await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })
  t.equal(commands(await scrapeMetrics(app), 'del'), 1)
})

t.test('a command Redis cannot answer is still counted: it was sent, and cost the request a 503', async (t) => {
  const own = await startRedis()
  t.teardown(async () => await own.stop())
  const app = await buildModeApp(t, 'redis', own.url, { REDIS_COMMAND_TIMEOUT_MS: '200' })
  const { token } = await login(app)
  own.pause()
  t.teardown(() => own.resume())
  t.equal((await feedsWithBearer(app, token)).statusCode, 503)
  own.resume()
  t.equal(commands(await scrapeMetrics(app), 'getex'), 1)
})

for (const mode of ['memory', 'jwt'] as const) {
  t.test(`${mode} mode sends no command to any store`, async (t) => {
    const app = await buildModeApp(t, mode)
    const { token } = await login(app)
    for (let i = 0; i < 3; i++) t.equal((await feedsWithBearer(app, token)).statusCode, 200)
    await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${token}` } })
    t.equal(commands(await scrapeMetrics(app)), 0)
  })
}
