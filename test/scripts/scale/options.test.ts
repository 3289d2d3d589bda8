import t from 'tap'
import { DEFAULT_ASSUMPTIONS } from '../../../scripts/scale/assumptions.ts'
import { parseScaleArgs, UsageError } from '../../../scripts/scale/options.ts'

t.test('defaults: 100,000 req/s, 10 million sessions, every assumption its default', async (t) => {
  const o = parseScaleArgs(['--from', 'c.json'])
  t.match(o, { from: 'c.json', rps: 100_000, sessions: 10_000_000, json: null, given: [] })
  t.same(o.assumptions, DEFAULT_ASSUMPTIONS)
})

t.test('a target and assumptions from the flags, and which were given', async (t) => {
  const o = parseScaleArgs(['--from', 'c.json', '--rps', '2500.5', '--sessions', '0', '--json', 'out/plan.json', '--utilisation', '0.7', '--replicas', '2', '--redis-entry-bytes', '120'])
  t.match(o, { rps: 2500.5, sessions: 0, json: 'out/plan.json' })
  t.match(o.assumptions, { utilisation: 0.7, replicas: 2, redisEntryBytes: 120, nicGbit: DEFAULT_ASSUMPTIONS.nicGbit })
  t.same(o.given, ['utilisation', 'replicas', 'redisEntryBytes'])
})

t.test('bad input is a UsageError naming the flag', async (t) => {
  const bad: Array<[string[], RegExp]> = [
    [[], /--from FILE is required/],
    [['--from', 'c.json', '--rps', '-5'], /--rps must be a number at least 1 \(got "-5"\)/],
    [['--from', 'c.json', '--rps', 'lots'], /--rps must be/],
    [['--from', 'c.json', '--sessions', '1.5'], /--sessions must be a whole number/],
    [['--from', 'c.json', '--utilisation', '1.5'], /--utilisation must be a number from 0.05 to 1/],
    [['--from', 'c.json', '--replicas', '-1'], /--replicas must be a whole number from 0 to 10 \(got "-1"\)/],
    [['--from', 'c.json', '--nic-gbit', ''], /--nic-gbit must be/],
    [['--from', 'c.json', '--json', ''], /--json needs a file name/],
    [['--from', 'c.json', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['--from'], /argument missing/]
  ]
  for (const [argv, message] of bad) {
    t.throws(() => parseScaleArgs(argv), UsageError, argv.join(' '))
    try {
      parseScaleArgs(argv)
    } catch (err) {
      t.match((err as Error).message, message, argv.join(' '))
    }
  }
})

t.test('--help needs no --from', async (t) => {
  t.equal(parseScaleArgs(['--help']).help, true)
})
