import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import pino from 'pino'
import t, { type Test } from 'tap'
import { startRedisHa } from '../../../scripts/lib/redis-ha.ts'
import { eventually } from '../../helpers/cluster.ts'
import { buildTestApp, feedsWithBearer, login } from '../../helpers/service-app.ts'
import { issuerLogin, refresh, startTestIssuer } from '../../helpers/issuer.ts'
import { hashRefreshToken } from '../../../services/issuer/refresh-tokens.ts'

// The app server's Redis through real Sentinels (services/auth/redis-client.ts): WAIT against a
// real replica, acknowledging or frozen, and a failover with the old primary still running
// (READONLY). One primary, one replica and three Sentinels for the whole file.
const ha = await startRedisHa()
t.teardown(async () => await ha.stop())
const sentinels = { REDIS_SENTINELS: ha.sentinelList, REDIS_SENTINEL_NAME: ha.name }
const WAIT_TIMEOUT_MS = 200
const COMMAND_TIMEOUT_MS = 500

async function freezeReplica (t: Test): Promise<() => void> {
  ha.replica.signal('SIGSTOP')
  let thawed = false
  const thaw = (): void => {
    if (!thawed) ha.replica.signal('SIGCONT')
    thawed = true
  }
  t.teardown(thaw)
  return thaw
}

const loginRequest = { method: 'POST', url: '/login', payload: { username: 'alice', password: 'wonderland' } } as const

t.test('REDIS_WAIT_REPLICAS=1: a login is answered once the replica holds its session; with the replica frozen, a named 503 after the WAIT timeout, and reads go on', async (t) => {
  const app = await buildTestApp(t, { AUTH_MODE: 'redis', ...sentinels, REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: String(WAIT_TIMEOUT_MS), REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) })
  const { token } = await login(app)
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'the replica acknowledged: logged in')
  const replica = new Redis({ port: ha.replica.port, lazyConnect: true })
  await replica.connect()
  t.equal(await replica.exists(`session:${token}`), 1, 'the session is on the replica already')
  replica.disconnect()

  const thaw = await freezeReplica(t)
  const started = performance.now()
  const refused = await app.inject(loginRequest)
  const ms = performance.now() - started
  t.equal(refused.statusCode, 503)
  t.match(refused.json(), { error: 'session_store_not_replicated', servedBy: 'test-app' })
  t.equal(refused.headers['retry-after'], '1')
  // Bounds of correctness, not speed: it did wait for the replica, and no longer than a command may take.
  t.ok(ms >= WAIT_TIMEOUT_MS - 5, `it waited the WAIT timeout for the replica (${ms.toFixed(0)} ms)`)
  t.ok(ms < COMMAND_TIMEOUT_MS + 1000, `and answered within the command timeout and a margin (${ms.toFixed(0)} ms)`)
  // WAIT blocks only the connection of the replicated writes: the reads do not queue behind it.
  const reads = await Promise.all([refused, ...Array.from({ length: 5 })].map(async () => await feedsWithBearer(app, token)))
  t.same(reads.map((r) => r.statusCode), [200, 200, 200, 200, 200, 200], 'reads answer while a login waits for a frozen replica')
  const logins = await Promise.all(Array.from({ length: 4 }, async () => await app.inject(loginRequest)))
  t.same(logins.map((r) => r.statusCode), [503, 503, 503, 503], 'logins at the same moment: each a 503, none a hang or a 200')

  thaw()
  t.ok(await eventually(async () => (await app.inject(loginRequest)).statusCode === 200, 10_000), 'the replica back: logins are answered again')
})

t.test('REDIS_WAIT_REPLICAS=0 (the default): the login is answered with the replica frozen, its session only on the primary', async (t) => {
  const app = await buildTestApp(t, { AUTH_MODE: 'redis', ...sentinels })
  await freezeReplica(t)
  const answer = await app.inject(loginRequest)
  t.equal(answer.statusCode, 200, 'what asynchronous replication accepts: the answer does not wait for a copy')
})

t.test('jwt revocation with REDIS_WAIT_REPLICAS=1: logout waits for the replica; frozen, a named 503', async (t) => {
  const app = await buildTestApp(t, { AUTH_MODE: 'jwt', JWT_REVOCATION: 'redis', ...sentinels, REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: String(WAIT_TIMEOUT_MS) })
  const first = await login(app)
  const out = await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${first.token}` } })
  t.equal(out.statusCode, 204)
  t.match((await feedsWithBearer(app, first.token)).json(), { reason: 'revoked' }, 'revoked, with the replica holding it')

  const second = await login(app)
  const thaw = await freezeReplica(t)
  const refused = await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${second.token}` } })
  t.equal(refused.statusCode, 503)
  t.match(refused.json(), { error: 'session_store_not_replicated' }, 'the client is told its logout may not survive a failover, and can send it again')
  thaw()
})

t.test('the issuer with REDIS_WAIT_REPLICAS=1: a login\'s refresh family and each rotation wait for the replica; frozen, a named 503, never a rotation a failover could undo', async (t) => {
  const prefix = 'issuer-wait:'
  const issuer = await startTestIssuer(t, { ...sentinels, REDIS_KEY_PREFIX: prefix, REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: String(WAIT_TIMEOUT_MS), REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) })
  const replica = new Redis({ port: ha.replica.port, lazyConnect: true })
  await replica.connect()
  t.teardown(() => { replica.disconnect() })
  const onReplica = async (refreshToken: string): Promise<boolean> => await replica.exists(`${prefix}refresh:token:${hashRefreshToken(refreshToken)}`) === 1

  const issued = await issuerLogin(issuer.app)
  t.ok(await onReplica(issued.refreshToken), 'answered once the replica held the new family')
  const rotated = await refresh(issuer.app, issued.refreshToken)
  t.equal(rotated.statusCode, 200)
  const next = (rotated.json() as { refreshToken: string }).refreshToken
  t.ok(await onReplica(next), 'the rotation too: the token just handed out is on the replica when the answer comes')

  const thaw = await freezeReplica(t)
  const started = performance.now()
  const refused = await refresh(issuer.app, next)
  const ms = performance.now() - started
  t.equal(refused.statusCode, 503, 'a rotation the replica did not confirm is not a 200')
  t.match(refused.json(), { error: 'session_store_not_replicated' })
  t.equal(refused.headers['retry-after'], '1')
  t.ok(ms >= WAIT_TIMEOUT_MS - 5 && ms < COMMAND_TIMEOUT_MS + 1000, `after waiting the WAIT timeout for the replica, not a hang (${ms.toFixed(0)} ms)`)
  const logins = await Promise.all(Array.from({ length: 3 }, async () => await issuer.app.inject(loginRequest)))
  t.same(logins.map((r) => r.statusCode), [503, 503, 503], 'logins at the same moment: each a 503, none a hang or a 200')
  thaw()
  t.ok(await eventually(async () => (await issuer.app.inject(loginRequest)).statusCode === 200, 10_000), 'the replica back: logins are answered again')
})

t.test('the issuer without WAIT (the default): a rotation is answered with the replica frozen, only on the primary', async (t) => {
  const issuer = await startTestIssuer(t, { ...sentinels, REDIS_KEY_PREFIX: 'issuer-nowait:' })
  const issued = await issuerLogin(issuer.app)
  await freezeReplica(t)
  t.equal((await refresh(issuer.app, issued.refreshToken)).statusCode, 200, 'what asynchronous replication accepts')
})

t.test('a connection left open to a primary that became a replica (READONLY): the client reconnects through the Sentinels to the new one', async (t) => {
  const lines: string[] = []
  const logger = pino({ level: 'info' }, new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(...chunk.toString().split('\n').filter((l) => l !== '')); done() } }))
  const app = await buildTestApp(t, { AUTH_MODE: 'redis', ...sentinels }, { logger })
  const { token } = await login(app)
  const oldPrimary = await ha.primaryPort() as number
  const newPrimary = [ha.primary, ha.replica].find((n) => n.port !== oldPrimary)?.port as number
  // The roles swapped by hand, then the Sentinels told of the new primary: unlike a Sentinel
  // failover, nothing ends the app's connections to the old primary (REPLICAOF keeps clients).
  const command = async (port: number, ...args: string[]): Promise<unknown> => {
    const r = new Redis({ port, lazyConnect: true })
    await r.connect()
    try { return await r.call(args[0] as string, ...args.slice(1)) } finally { r.disconnect() }
  }
  await command(newPrimary, 'REPLICAOF', 'NO', 'ONE')
  await command(oldPrimary, 'REPLICAOF', '127.0.0.1', String(newPrimary))
  for (const sentinel of ha.sentinels) {
    await command(sentinel.port, 'SENTINEL', 'REMOVE', ha.name)
    await command(sentinel.port, 'SENTINEL', 'MONITOR', ha.name, '127.0.0.1', String(newPrimary), '2')
    await command(sentinel.port, 'SENTINEL', 'SET', ha.name, 'down-after-milliseconds', '1000', 'failover-timeout', '3000')
  }
  t.equal(await ha.primaryPort(), newPrimary, 'the Sentinels name the new primary')

  const statuses: number[] = []
  const back = await eventually(async () => {
    const answers = await Promise.all([feedsWithBearer(app, token), app.inject(loginRequest)])
    statuses.push(...answers.map((a) => a.statusCode))
    return answers.every((a) => a.statusCode === 200)
  }, 10_000, 100)
  t.ok(back, 'reads and logins work again, on the new primary')
  t.same([...new Set(statuses)].filter((s) => s !== 200 && s !== 503), [], `only 200s and 503s meanwhile (${statuses.join(' ')})`)
  const parsed = lines.map((l) => JSON.parse(l) as { msg?: string, err?: string, primary?: string })
  t.ok(parsed.some((l) => l.msg === 'session store unavailable' && /READONLY/.test(l.err ?? '')), 'a write refused with READONLY, answered 503')
  t.ok(parsed.some((l) => l.msg?.startsWith('redis failover: now connected to the new primary') === true && l.primary === `127.0.0.1:${newPrimary}`), 'then a reconnection to the new primary, logged')
})

t.test('a failover with the old primary still running (SENTINEL FAILOVER): the app follows the Sentinels to the new primary, says so in its log, and keeps the sessions', async (t) => {
  const lines: string[] = []
  const logger = pino({ level: 'info' }, new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(...chunk.toString().split('\n').filter((l) => l !== '')); done() } }))
  const app = await buildTestApp(t, { AUTH_MODE: 'redis', ...sentinels }, { logger })
  const { token } = await login(app)
  const oldPrimary = await ha.primaryPort() as number
  const sentinel = new Redis({ port: ha.sentinels[0]?.port, lazyConnect: true })
  await sentinel.connect()
  t.equal(await sentinel.call('SENTINEL', 'FAILOVER', ha.name), 'OK')
  sentinel.disconnect()
  await ha.waitForNewPrimary(oldPrimary, 15_000)
  // The Sentinels turn the old primary into a replica only once they see it still claiming to be
  // one (their INFO poll): until then it takes writes that the new primary will never have.
  const old = new Redis({ port: oldPrimary, lazyConnect: true })
  await old.connect()
  t.ok(await eventually(async () => (await old.info('replication')).includes('role:slave'), 15_000, 100), 'the old primary became a replica')
  old.disconnect()

  // The Sentinels end the old primary's client connections as they convert it (CLIENT KILL
  // TYPE normal), so the app reconnects through them, to the new primary; each answer meanwhile
  // a 200 or a 503. (A connection left open to a demoted primary would get READONLY, which also
  // reconnects: reconnectOnError in redis-client.ts; not reproduced here.)
  const statuses: number[] = []
  const writesWork = await eventually(async () => {
    const answers = await Promise.all([feedsWithBearer(app, token), app.inject(loginRequest)])
    statuses.push(...answers.map((a) => a.statusCode))
    return answers.every((a) => a.statusCode === 200)
  }, 10_000, 100)
  t.ok(writesWork, 'reads and logins work again on the new primary')
  t.same([...new Set(statuses)].filter((s) => s !== 200 && s !== 503), [], `only 200s and 503s meanwhile (${statuses.length} answers)`)
  const newPrimary = await ha.primaryPort()
  t.not(newPrimary, oldPrimary)
  const failover = lines.map((l) => JSON.parse(l) as { msg?: string, primary?: string, previous?: string }).find((l) => l.msg?.startsWith('redis failover: now connected to the new primary') === true)
  t.match(failover, { primary: `127.0.0.1:${String(newPrimary)}`, previous: `127.0.0.1:${oldPrimary}` }, 'the log names the new primary and the old one')
  t.equal((await feedsWithBearer(app, token)).statusCode, 200, 'the session made before the failover is on the new primary')
})
