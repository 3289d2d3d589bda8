import t from 'tap'
import { sigtermDrain } from '../../scripts/faults/drain.ts'
import { assertBounds } from '../helpers/fault-report.ts'

t.test('SIGTERM to an app server drains its requests in flight, and the balancer loses no GET', async (t) => {
  assertBounds(t, await sigtermDrain({ target: 'server', inFlight: 4 }))
})

t.test('SIGTERM to the balancer drains its requests in flight before it exits', async (t) => {
  assertBounds(t, await sigtermDrain({ target: 'balancer', inFlight: 4 }))
})
