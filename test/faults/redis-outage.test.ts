import t from 'tap'
import { redisOutage } from '../../scripts/faults/redis-outage.ts'
import { assertBounds } from '../helpers/fault-report.ts'

t.test('redis mode: Redis killed under load, restarted from its append-only file', async (t) => {
  assertBounds(t, await redisOutage({ mode: 'redis', how: 'kill', outageMs: 1500, connections: 4 }))
})

t.test('redis mode: Redis frozen (SIGSTOP) under load, then thawed', async (t) => {
  assertBounds(t, await redisOutage({ mode: 'redis', how: 'freeze', outageMs: 1500, connections: 4 }))
})

t.test('jwt mode with JWT_REVOCATION=redis: the same outage, the same 503s', async (t) => {
  assertBounds(t, await redisOutage({ mode: 'jwt', how: 'kill', outageMs: 1500, connections: 4 }))
})
