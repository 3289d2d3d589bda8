import t from 'tap'
import { startPrivateRedis } from '../../../scripts/compare/private-redis.ts'
import { measureSessionCosts } from '../../../scripts/compare/session-costs.ts'
import { measureMemorySessions } from '../../../scripts/compare/session-memory.ts'

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

t.test('only what is asked for is measured', async (t) => {
  const costs = await measureSessionCosts(100, { memory: false })
  t.equal(costs.memory, null)
  t.equal(costs.redis, null)
  t.equal(costs.credentials.sessionIdBytes, 43, 'credential sizes always')
})

const hasGc = (globalThis as { gc?: unknown }).gc !== undefined
t.test('heap growth needs a full GC to mean anything: without --expose-gc it refuses', { skip: hasGc ? 'this test process has --expose-gc' : false }, async (t) => {
  await t.rejects(measureMemorySessions(10), /--expose-gc/)
})
