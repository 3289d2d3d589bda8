import t from 'tap'
import { postgresOutage, type PostgresOutageOptions } from '../../scripts/faults/postgres-outage.ts'
import { checkStoreOutage } from '../helpers/store-outage-bounds.ts'

// The cluster's PostgreSQL taken away under load and brought back, held to the contract's bounds
// (../helpers/store-outage-bounds.ts), not to the scenario's own verdicts: every committed session kept.
const SESSIONS = 12

const cases: Array<[string, PostgresOutageOptions]> = [
  ['postgres mode: PostgreSQL killed (SIGKILL, every backend) under load, restarted on its data directory', { how: 'kill', outageMs: 1500, connections: 4, sessions: SESSIONS }],
  ['postgres mode: PostgreSQL frozen (SIGSTOP, every backend) under load, then thawed', { how: 'freeze', outageMs: 1500, connections: 4, sessions: SESSIONS }]
]

for (const [name, options] of cases) {
  t.test(name, async (t) => {
    checkStoreOutage(t, await postgresOutage(options), 'PostgreSQL', SESSIONS)
  })
}
