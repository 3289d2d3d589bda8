import t from 'tap'
import { createMetrics } from '../../../services/metrics.ts'
import { difference, parsePrometheus, readCounters, sum } from '../../../scripts/compare/prometheus.ts'

t.test('reads labels, escapes and values of the text format', async (t) => {
  const samples = parsePrometheus([
    '# HELP x a counter',
    '# TYPE x counter',
    'x{a="1",b="q\\"uote"} 3',
    'x{a="2"} 4.5',
    'y 7 1700000000000',
    'not a sample line'
  ].join('\n'))
  t.same(samples, [
    { name: 'x', labels: { a: '1', b: 'q"uote' }, value: 3 },
    { name: 'x', labels: { a: '2' }, value: 4.5 },
    { name: 'y', labels: {}, value: 7 }
  ])
  t.equal(sum(samples, 'x'), 7.5)
  t.equal(sum(samples, 'x', { a: '2' }), 4.5)
  t.equal(sum(samples, 'missing'), 0)
})

t.test('readCounters takes an app server\'s own /metrics, and difference is what happened between two reads', async (t) => {
  const metrics = createMetrics('app-2', 'redis')
  const before = readCounters(await metrics.registry.metrics())
  t.match(before, { server: 'app-2', mode: 'redis', ok: 0, unauthorized: 0, authCount: 0, storeCommands: 0 })

  metrics.authOutcomes.inc({ outcome: 'ok', reason: 'none' }, 3)
  metrics.authOutcomes.inc({ outcome: 'unauthorized', reason: 'unknown_session' }, 2)
  metrics.authOutcomes.inc({ outcome: 'unauthorized', reason: 'expired' })
  metrics.authOutcomes.inc({ outcome: 'unavailable', reason: 'session_store_unavailable' })
  for (const s of [0.001, 0.002, 0.003]) metrics.authDuration.observe(s)
  metrics.sessionStoreCommands.inc({ command: 'get' }, 6)
  metrics.sessionStoreCommands.inc({ command: 'set' })
  const after = readCounters(await metrics.registry.metrics())

  const d = difference(after, before)
  t.match(d, { server: 'app-2', ok: 3, unauthorized: 3, unavailable: 1, authCount: 3, storeCommands: 7 }, 'refusals of every reason, commands of every kind')
  t.ok(Math.abs(d.authSeconds - 0.006) < 1e-9, 'the histogram sum: seconds spent authenticating')
  t.ok(after.cpuSeconds > 0, 'process_cpu_seconds_total comes from the default metrics')
})

t.test('a session cache\'s lookups: a hit or a logout\'s marker is answered by the cache, the rest are not (session-cache-figures.ts hitRatio)', async (t) => {
  const metrics = createMetrics('app-1', 'postgres')
  const before = readCounters(await metrics.registry.metrics())
  t.match(before, { cacheLookups: 0, cacheHits: 0, cacheCommands: 0 })
  metrics.sessionCacheLookups.inc({ cache: 'redis', result: 'hit' }, 90)
  metrics.sessionCacheLookups.inc({ cache: 'redis', result: 'ended' }, 2)
  metrics.sessionCacheLookups.inc({ cache: 'redis', result: 'miss' }, 5)
  metrics.sessionCacheLookups.inc({ cache: 'redis', result: 'renew' }, 3)
  metrics.sessionCacheCommands.inc({ command: 'get' }, 100)
  const d = difference(readCounters(await metrics.registry.metrics()), before)
  t.match(d, { cacheLookups: 100, cacheHits: 92, cacheCommands: 100 })
})
