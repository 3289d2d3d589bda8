import t from 'tap'
import { balancerThreadsFor, balancerThreadsNote } from '../../../scripts/compare/target.ts'

t.test('compare gives the balancer more threads only where the machine has the cores', async (t) => {
  t.same([1, 2, 4, 7].map(balancerThreadsFor), [1, 1, 1, 1], 'below 8 cores: one, the servers and the load need the rest')
  t.same([8, 11, 12, 16, 64].map(balancerThreadsFor), [2, 2, 3, 4, 4], 'from 8: one per 4 cores, at most 4')
})

t.test('and says so in the report\'s target line', async (t) => {
  t.equal(balancerThreadsNote(2), '')
  t.equal(balancerThreadsNote(16), ' (on 4 threads: 16 cores)')
})
