import t from 'tap'
import { clientAborts, upstreamResets } from '../../scripts/faults/balancer-churn.ts'
import { assertBounds } from '../helpers/fault-report.ts'

t.test('a thousand clients hanging up mid-request: the balancer\'s sockets and heap come back', async (t) => {
  assertBounds(t, await clientAborts({ aborts: 1000 }))
})

t.test('a thousand upstream resets: no client hangs, the balancer\'s sockets and heap come back', async (t) => {
  assertBounds(t, await upstreamResets({ resets: 1000 }))
})
