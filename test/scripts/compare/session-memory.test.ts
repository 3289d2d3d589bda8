import t from 'tap'
import { startPrivateRedis } from '../../../scripts/compare/private-redis.ts'
import { measureSessionCosts } from '../../../scripts/compare/session-costs.ts'
import { measureMemorySessions, measurePostgresSessions } from '../../../scripts/compare/session-memory.ts'
import { startPostgres } from '../../helpers/postgres-server.ts'

t.test('memory per session, in a server\'s heap and in Redis, through the real authenticators', async (t) => {
  const redis = await startPrivateRedis()
  t.teardown(async () => await redis.stop())
  const costs = await measureSessionCosts(5000, { memory: true, redisUrl: redis.directUrl })

  t.equal(costs.credentials.sessionIdBytes, 43, 'a session id: 32 random bytes as base64url')
  t.ok(costs.credentials.jwtBytes > costs.credentials.sessionIdBytes, `a JWT (${costs.credentials.jwtBytes} B) is bigger than a session id`)

  const memory = costs.memory
  t.equal(memory?.sessions, 5000)
  t.ok((memory?.bytesPerSession ?? 0) >= 43, `memory: ${memory?.bytesPerSession.toFixed(0)} B per session, at least the 43-byte id it is keyed by`)

  const inRedis = costs.redis
  t.equal(inRedis?.keys, 5000, 'one key per session')
  t.ok((inRedis?.bytesPerSession ?? 0) >= 'session:'.length + 43, `redis: ${inRedis?.bytesPerSession.toFixed(0)} B per session, at least its key`)
})

t.test('PostgreSQL: the table and its indexes grow by a few hundred bytes per session, each session one row', async (t) => {
  const postgres = await startPostgres()
  t.teardown(async () => await postgres.remove())
  const url = await postgres.createDatabase()
  const costs = await measureSessionCosts(5000, { memory: false, databaseUrl: url })
  const cost = costs.postgres
  t.equal(cost?.rows, 5000, 'one row per session')
  t.equal(Number((await postgres.sql('SELECT count(*) AS n FROM sessions', [], url))[0]?.n), 5000, 'and they are in the table')
  const perSession = cost?.bytesPerSession ?? 0
  // A row holds the 43-byte id twice over (the table and its primary key), two bigints, the user.
  t.ok(perSession >= 2 * 43 + 16 && perSession < 1000, `${perSession.toFixed(0)} B per session: at least the id in the row and in its index, under a kilobyte`)
  t.ok((cost?.tableBytes ?? 0) > 0 && (cost?.indexBytes ?? 0) > 0, `the rows (${cost?.tableBytes} B) and the indexes (${cost?.indexBytes} B) both grew`)
  t.ok((cost?.tableBytes ?? 0) + (cost?.indexBytes ?? 0) <= (cost?.totalBytesAfter ?? 0) - (cost?.totalBytesBefore ?? 0), 'and they are within the total growth')

  const again = await measurePostgresSessions(5000, url)
  t.equal(again.rows, 5000, 'measured again on a table that holds sessions already: only the new ones are counted')
  t.ok(Math.abs(again.bytesPerSession - perSession) / perSession < 0.5, `and cost about the same (${again.bytesPerSession.toFixed(0)} B)`)
})

t.test('only what is asked for is measured', async (t) => {
  const costs = await measureSessionCosts(100, { memory: false })
  t.equal(costs.memory, null)
  t.equal(costs.redis, null)
  t.equal(costs.postgres, null)
  t.equal(costs.credentials.sessionIdBytes, 43, 'credential sizes always')
})

const hasGc = (globalThis as { gc?: unknown }).gc !== undefined
t.test('heap growth needs a full GC to mean anything: without --expose-gc it refuses', { skip: hasGc ? 'this test process has --expose-gc' : false }, async (t) => {
  await t.rejects(measureMemorySessions(10), /--expose-gc/)
})
