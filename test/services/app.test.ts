import { Writable } from 'node:stream'
import type { InjectOptions } from 'fastify'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { loggerOptions } from '../../lib/logger.ts'
import { buildApp } from '../../services/app.ts'
import { SessionStoreUnavailableError } from '../../services/auth/authenticator.ts'
import { loadServerConfig } from '../../services/config.ts'
import { MODES, buildModeApp, login, type Mode } from '../helpers/service-app.ts'
import { startPostgres } from '../helpers/postgres-server.ts'
import { startRedis } from '../helpers/redis-server.ts'

const redis = await startRedis()
t.teardown(async () => await redis.stop())
const postgres = await startPostgres()
t.teardown(async () => await postgres.remove())
/** The store a mode's app is given: a private redis-server, or a database of its own on a private PostgreSQL. */
const storeFor = async (mode: Mode): Promise<string> => mode === 'postgres' ? await postgres.createDatabase() : redis.url

for (const mode of MODES) {
  t.test(`${mode} mode: x-served-by is on every response, whatever its status`, async (t) => {
    const app = await buildModeApp(t, mode, await storeFor(mode), { SERVER_ID: `every-${mode}` })
    const { token } = await login(app)
    const requests: Array<[InjectOptions, number]> = [
      [{ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } }, 200],
      [{ method: 'POST', url: '/login', payload: { username: 'alice', password: 'nope' } }, 401],
      [{ method: 'POST', url: '/login', payload: '{', headers: { 'content-type': 'application/json' } }, 400],
      [{ method: 'POST', url: '/login', payload: 'x'.repeat(20_000), headers: { 'content-type': 'application/json' } }, 413],
      [{ method: 'POST', url: '/login', payload: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415],
      [{ method: 'GET', url: '/feeds', headers: { authorization: `Bearer ${token}` } }, 200],
      [{ method: 'GET', url: '/getFeeds', cookies: { auth: token } }, 200],
      [{ method: 'GET', url: '/feeds' }, 401],
      [{ method: 'GET', url: '/feeds', headers: { authorization: 'Bearer x.y.z' } }, 401],
      [{ method: 'HEAD', url: '/health' }, 200],
      [{ method: 'GET', url: '/health' }, 200],
      [{ method: 'GET', url: '/metrics' }, 200],
      [{ method: 'GET', url: '/nope' }, 404],
      [{ method: 'DELETE', url: '/feeds' }, 404],
      [{ method: 'GET', url: '/%zz' }, 400],
      [{ method: 'GET', url: '/feeds%' }, 400],
      [{ method: 'POST', url: '/logout' }, 204]
    ]
    for (const [request, status] of requests) {
      const res = await app.inject(request)
      const label = `${request.method ?? 'GET'} ${request.url as string}`
      t.equal(res.statusCode, status, `${label} -> ${status}`)
      t.equal(res.headers['x-served-by'], `every-${mode}`, `${label}: x-served-by`)
      if (status >= 400) {
        t.match(res.headers['content-type'], /^application\/json/, `${label}: JSON error`)
        t.match(res.json(), { error: String, servedBy: `every-${mode}` }, `${label}: error and servedBy in the body`)
      }
    }
  })
}

t.test('a 404 says which route was missing', async (t) => {
  const app = await buildModeApp(t, 'memory')
  const res = await app.inject({ method: 'POST', url: '/feeds?x=1' })
  t.equal(res.statusCode, 404)
  t.same(res.json(), { error: 'not_found', message: 'POST /feeds?x=1 is not a route', servedBy: 'app-memory' })
})

t.test('a URL that cannot be decoded is our JSON 400, not a 5xx', async (t) => {
  const app = await buildModeApp(t, 'memory')
  const res = await app.inject({ method: 'GET', url: '/%E0%A4%A' })
  t.equal(res.statusCode, 400)
  t.same(res.json(), { error: 'bad_request', message: "'/%E0%A4%A' is not a valid url component", servedBy: 'app-memory' })
})

t.test('an unexpected error is a 500 that hides its message; a store outage is a 503 with Retry-After', async (t) => {
  const app = await buildModeApp(t, 'memory')
  app.get('/boom', async () => { throw new Error('connection string postgres://admin:hunter2@db') })
  app.get('/store-down', async () => { throw new SessionStoreUnavailableError(new Error('ECONNREFUSED')) })
  app.get('/teapot', async () => { throw Object.assign(new Error('short and stout'), { statusCode: 418 }) })

  const boom = await app.inject({ method: 'GET', url: '/boom' })
  t.equal(boom.statusCode, 500)
  t.same(boom.json(), { error: 'internal_error', servedBy: 'app-memory' })
  t.notMatch(boom.body, 'hunter2', 'the message of a 5xx stays in the log')
  t.equal(boom.headers['x-served-by'], 'app-memory')

  const down = await app.inject({ method: 'GET', url: '/store-down' })
  t.equal(down.statusCode, 503)
  t.same(down.json(), { error: 'session_store_unavailable', servedBy: 'app-memory' })
  t.equal(down.headers['retry-after'], '1')

  const teapot = await app.inject({ method: 'GET', url: '/teapot' })
  t.equal(teapot.statusCode, 418)
  t.same(teapot.json(), { error: 'client_error', message: 'short and stout', servedBy: 'app-memory' }, 'a 4xx keeps its message')
})

/** A memory-mode app whose pino lines (debug and up) are collected, parsed, in `lines`. */
async function loggedApp (t: Test): Promise<{ app: Awaited<ReturnType<typeof buildApp>>, lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      callback()
    }
  })
  const config = loadServerConfig({ AUTH_MODE: 'memory', SERVER_ID: 'logged-app' })
  const app = await buildApp(config, { logger: pino(loggerOptions(config.serverId, 'debug', false), stream) })
  t.teardown(async () => await app.close())
  return { app, lines }
}

t.test('the request log names the server, the user and the refusal, and never a credential', async (t) => {
  const { app, lines } = await loggedApp(t)

  const { token } = await login(app)
  await app.inject({ method: 'GET', url: '/feeds', headers: { authorization: `Bearer ${token}` } })
  await app.inject({ method: 'GET', url: '/feeds', cookies: { auth: 'B'.repeat(43) } })
  await app.inject({ method: 'GET', url: '/health' })

  const all = lines.map((l) => JSON.stringify(l)).join('\n')
  t.notMatch(all, token, 'the session id is not in the log')
  t.notMatch(all, 'wonderland', 'nor the password')
  t.notMatch(all, 'B'.repeat(43), 'nor a refused cookie')
  t.ok(lines.every((l) => l.server === 'logged-app'), 'every line names the server')

  const requestLines = lines.filter((l) => typeof l.statusCode === 'number')
  t.match(requestLines.find((l) => l.url === '/login'), { method: 'POST', statusCode: 200, user: 'alice', level: 30 })
  t.match(requestLines.find((l) => l.url === '/feeds' && l.statusCode === 200), { user: 'alice', level: 30 })
  t.match(requestLines.find((l) => l.url === '/feeds' && l.statusCode === 401), { reason: 'unknown_session', msg: 'GET /feeds 401 unknown_session' })
  t.match(requestLines.find((l) => l.url === '/health'), { level: 20 }, 'health checks are logged at debug only')
})

t.test('a refused body field is logged once, at info, by name and never by value', async (t) => {
  const { app, lines } = await loggedApp(t)
  const before = lines.length
  const bodies = [
    '{"username":"alice","password":"wonderland","apiKey":"sk-live-do-not-log","remember":true}',
    '{"username":"alice","password":"wonderland","__proto__":{"admin":"do-not-log"}}'
  ]
  for (const payload of bodies) await app.inject({ method: 'POST', url: '/login', payload, headers: { 'content-type': 'application/json' } })
  const logged = lines.slice(before)
  t.equal(logged.length, bodies.length, 'one line per request, nothing else', { logged })
  t.match(logged, [
    { level: 30, statusCode: 400, reason: 'refused_fields', fields: ['apiKey', 'remember'], msg: 'POST /login 400 refused_fields' },
    { level: 30, statusCode: 400, reason: 'refused_fields', fields: ['__proto__'], msg: 'POST /login 400 refused_fields' }
  ])
  const all = JSON.stringify(logged)
  t.notMatch(all, 'do-not-log', 'no value of a refused field')
  t.notMatch(all, 'wonderland', 'nor the password beside it')
})
