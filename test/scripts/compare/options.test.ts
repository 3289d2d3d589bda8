import t from 'tap'
import { parseCompareArgs, parseSweep, UsageError } from '../../../scripts/compare/options.ts'

t.test('defaults: six rows (memory, redis, postgres, jwt, jwt-revocation, cookie), 3 servers, 50 connections, 6 s, a wear-in of 30,000 requests per server, warm-ups of at most 8 s, one run, 100k sessions measured', async (t) => {
  const o = parseCompareArgs([])
  t.same(o.modes, ['memory', 'redis', 'postgres', 'jwt', 'jwt-revocation', 'cookie'])
  t.match(o, { servers: 3, connections: 50, durationSeconds: 6, warmupSeconds: 8, wearInPerServer: 30_000, runs: 1, sessions: 100_000, storeLatencyMs: 0, sweep: null, url: null, json: null, html: null })
})

t.test('a mode named twice is measured twice: the same mode on two clusters, to see the noise', async (t) => {
  t.same(parseCompareArgs(['--modes', 'jwt,jwt']).modes, ['jwt', 'jwt'])
})

t.test('every flag is read', async (t) => {
  const o = parseCompareArgs(['--modes', 'jwt,memory,jwt-revocation', '--servers', '2', '--connections', '8', '--duration', '1.5', '--warmup', '0', '--wear-in', '0',
    '--runs', '3', '--sessions', '0', '--redis-latency-ms', '20', '--json', 'out.json', '--html', 'out.html'])
  t.match(o, { modes: ['jwt', 'memory', 'jwt-revocation'], servers: 2, connections: 8, durationSeconds: 1.5, warmupSeconds: 0, wearInPerServer: 0, runs: 3, sessions: 0, storeLatencyMs: 20, json: 'out.json', html: 'out.html' })
})

t.test('the variants are opt-in by name; --store-latency-ms, or its older name --redis-latency-ms, but not both', async (t) => {
  const variants = ['postgres+redis-cache', 'postgres+local-cache', 'jwt-eddsa']
  t.same(parseCompareArgs(['--modes', variants.join(',')]).modes, variants)
  t.equal(parseCompareArgs(['--store-latency-ms', '5']).storeLatencyMs, 5)
  t.equal(parseCompareArgs(['--redis-latency-ms', '7']).storeLatencyMs, 7)
  t.throws(() => parseCompareArgs(['--store-latency-ms', '5', '--redis-latency-ms', '5']), { name: 'UsageError', message: /older name/ })
  t.throws(() => parseCompareArgs(['--store-latency-ms', '-1']), { message: '--store-latency-ms must be a whole number from 0 to 1000 (got "-1")' })
  t.throws(() => parseCompareArgs(['--modes', 'postgres+memcached']), { name: 'UsageError', message: /--modes takes .*jwt-eddsa/ })
})

t.test('--sweep takes a range or a list', async (t) => {
  t.same(parseSweep('servers=1..6'), [1, 2, 3, 4, 5, 6])
  t.same(parseSweep('servers=4,1,2,2'), [1, 2, 4], 'sorted, each size once')
  t.same(parseCompareArgs(['--sweep', 'servers=2..3']).sweep, [2, 3])
  for (const bad of ['1..6', 'servers=6..1', 'servers=0..2', 'servers=a', 'connections=1..2']) {
    t.throws(() => parseSweep(bad), UsageError, bad)
  }
})

t.test('bad values are usage errors that name the flag', async (t) => {
  for (const [args, flag] of [
    [['--modes', 'cookies'], '--modes'],
    [['--modes', 'revocation'], 'jwt-revocation'],
    [['--servers', '0'], '--servers'],
    [['--connections', 'many'], '--connections'],
    [['--duration', '0'], '--duration'],
    [['--runs', '1.5'], '--runs'],
    [['--redis-latency-ms', '-1'], '--redis-latency-ms'],
    [['--url', 'ftp://x'], '--url'],
    [['--bogus'], 'bogus']
  ] as const) {
    t.throws(() => parseCompareArgs([...args]), { name: 'UsageError', message: new RegExp(flag) }, args.join(' '))
  }
})

t.test('--url measures a running cluster: no sweep and no delay proxy with it', async (t) => {
  t.equal(parseCompareArgs(['--url', 'http://127.0.0.1:8080']).url, 'http://127.0.0.1:8080')
  t.throws(() => parseCompareArgs(['--url', 'http://127.0.0.1:8080', '--sweep', 'servers=1..2']), /--sweep/)
  t.throws(() => parseCompareArgs(['--url', 'http://127.0.0.1:8080', '--redis-latency-ms', '5']), /--redis-latency-ms/)
  t.throws(() => parseCompareArgs(['--url', 'http://127.0.0.1:8080', '--store-latency-ms', '5']), /--store-latency-ms/)
})

t.test('a negative number after a flag is checked as a value, not refused as a flag (parseArgs\' "ambiguous")', async (t) => {
  for (const args of [['--servers', '-1'], ['--servers=-1']]) {
    t.throws(() => parseCompareArgs(args), { name: 'UsageError', message: '--servers must be a whole number from 1 to 32 (got "-1")' }, args.join(' '))
  }
  t.throws(() => parseCompareArgs(['--redis-latency-ms', '-5']), { message: '--redis-latency-ms must be a whole number from 0 to 1000 (got "-5")' })
  t.throws(() => parseCompareArgs(['--warmup', '-.5']), { message: '--warmup must be a number of seconds from 0 to 60 (got "-.5")' })
  t.throws(() => parseCompareArgs(['--wear-in', '-1']), { message: '--wear-in must be a whole number from 0 to 1000000 (got "-1")' })
  t.throws(() => parseCompareArgs(['--wear-in', '2.5']), { name: 'UsageError', message: /--wear-in must be a whole number/ })
  // A flag where the value should be is still a missing value.
  t.throws(() => parseCompareArgs(['--servers', '--verbose']), { name: 'UsageError', message: /ambiguous/ })
})
