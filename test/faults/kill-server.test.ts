import t from 'tap'
import { killServer } from '../../scripts/faults/kill-server.ts'
import { assertBounds } from '../helpers/fault-report.ts'

// One of three app servers killed under load, then started again. The scenario is the one
// `npm run faults` reports; here with a lighter load, and its bounds asserted.
for (const mode of ['jwt', 'redis', 'memory'] as const) {
  t.test(`${mode} mode: kill a server under load, restart it`, async (t) => {
    assertBounds(t, await killServer({ mode, connections: 4, sessions: 9, healthTimeoutMs: 2000 }))
  })
}
