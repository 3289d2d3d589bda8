import t from 'tap'
import { baseMode, runNames } from '../../../scripts/compare/mode-names.ts'

t.test('a mode named twice gets a name of its own the second time; every name says its mode', async (t) => {
  t.same(runNames(['jwt', 'memory', 'jwt', 'jwt']), [
    { mode: 'jwt', name: 'jwt' },
    { mode: 'memory', name: 'memory' },
    { mode: 'jwt', name: 'jwt#2' },
    { mode: 'jwt', name: 'jwt#3' }
  ])
  t.equal(baseMode('jwt#2'), 'jwt')
  t.equal(baseMode('jwt-revocation#2'), 'jwt-revocation')
  t.equal(baseMode('memory'), 'memory')
})
