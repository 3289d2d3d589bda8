import t from 'tap'
import { redisOutage, type RedisOutageOptions } from '../../scripts/faults/redis-outage.ts'
import { checkStoreOutage } from '../helpers/store-outage-bounds.ts'

// Redis taken away under load and brought back (killed and restarted from its append-only file,
// or frozen and thawed), held to the contract's bounds (../helpers/store-outage-bounds.ts), not
// to the scenario's own verdicts: nothing lost that Redis had acknowledged.
const SESSIONS = 12

const cases: Array<[string, RedisOutageOptions]> = [
  ['redis mode: Redis killed under load, restarted from its append-only file', { mode: 'redis', how: 'kill', outageMs: 1500, connections: 4, sessions: SESSIONS }],
  ['redis mode: Redis frozen (SIGSTOP) under load, then thawed', { mode: 'redis', how: 'freeze', outageMs: 1500, connections: 4, sessions: SESSIONS }],
  ['jwt mode with JWT_REVOCATION=redis: the same outage, the same 503s', { mode: 'jwt', how: 'kill', outageMs: 1500, connections: 4, sessions: SESSIONS }]
]

for (const [name, options] of cases) {
  t.test(name, async (t) => {
    checkStoreOutage(t, await redisOutage(options), 'Redis', SESSIONS)
  })
}
