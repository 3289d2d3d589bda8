import t from 'tap'
import { buildCharts } from '../../../scripts/compare/report-charts.ts'
import { latencyHidden, storeName } from '../../../scripts/compare/report-stores.ts'
import { formatReport, plainWords } from '../../../scripts/compare/report-text.ts'
import { combineRuns, type CompareReport, type ModeResult } from '../../../scripts/compare/run-compare.ts'
import { fakeReport, fakeRun } from '../../helpers/compare-report.ts'

// The rows beyond the first four, made up but self-consistent: postgres at one statement per
// request and a 2,000 µs auth step (as medians go: 0.8 of the mean), a shared cache at 1,000 µs,
// a cache per server at 10 µs, a sealed cookie and an issuer-signed JWT.
function row (mode: string, authUs: number, extra: Partial<ModeResult> = {}): ModeResult {
  const run = { ...fakeRun(mode, 3, 900, authUs), storeCommandsPerRequest: mode === 'postgres' ? 1 : mode.startsWith('postgres+') ? 0.004 : 0 }
  if (mode.startsWith('postgres+')) run.sessionCache = { lookups: 1000, hitRatio: 0.995, cacheCommandsPerRequest: mode === 'postgres+redis-cache' ? 1 : 0 }
  const credentialBytes = mode === 'cookie' ? 66 : mode === 'jwt-eddsa' ? 407 : 43
  return { ...combineRuns([run], { credentialBytes, bytesPerSession: mode === 'cookie' || mode === 'jwt-eddsa' ? 0 : 195, measuredAs: 'made up' }), ...extra }
}

function report (): CompareReport {
  const r = fakeReport()
  r.results.push(
    row('postgres', 2500, { postgresCpuUsPerRequest: 103.4 }),
    row('cookie', 100),
    row('postgres+redis-cache', 1250),
    row('postgres+local-cache', 12.5),
    row('jwt-eddsa', 200, {
      loginsServedBy: { 'issuer-1': 10 },
      refresh: { refreshes: 400, failed: 0, concurrency: 4, seconds: 1.5, latencyMs: { mean: 4, p50: 3.5, p99: 9 }, issuerCpuUsPerRefresh: 950 }
    })
  )
  r.config.modes = r.results.map((x) => x.mode)
  return r
}

t.test('the store each mode asks, named in the cost table\'s note', async (t) => {
  t.equal(storeName('redis'), 'Redis commands')
  t.equal(storeName('jwt-revocation'), 'Redis commands')
  t.equal(storeName('postgres+local-cache'), 'PostgreSQL statements')
  t.equal(storeName('cookie'), 'none')
  t.equal(storeName('jwt-eddsa'), 'none')
  const text = formatReport(report())
  t.match(text, /^mode +auth µs mean +auth µs p50\/p99 +store trips\/req /m)
  t.match(text, '(store trips: none in memory, Redis commands in redis, none in jwt, Redis commands in jwt-revocation, PostgreSQL statements in postgres, none in cookie, PostgreSQL statements in postgres+redis-cache')
  t.match(text, /^postgres +.* 1\.00 .* 43 B +195 B$/m, 'postgres: one statement per request, its bytes per session')
  t.match(text, /^cookie +.* 0\.00 .* 66 B +0 B$/m, 'cookie: no store, its credential')
  t.match(text, /^mode +.* balancer CPU µs\/req +store CPU µs\/req +credential /m, 'the stores\' own CPU beside the balancer\'s')
  t.match(text, /^postgres +.* PostgreSQL 103 +43 B +195 B$/m, 'postgres: its backends\' CPU per request')
  t.match(text, /^cookie +.* - +66 B +0 B$/m, 'no store, no store CPU')
})

t.test('the caches: statements per request, hit ratio, and how much of postgres\'s auth step each hid', async (t) => {
  const r = report()
  const by = (m: string): ModeResult => r.results.find((x) => x.mode === m) as ModeResult
  t.equal(latencyHidden(r, by('postgres+redis-cache')), 0.5)
  t.equal(latencyHidden(r, by('postgres+local-cache')), 0.995)
  t.equal(latencyHidden(r, by('postgres')), null, 'postgres hides nothing of itself')
  const text = formatReport(r)
  t.match(text, 'A cache in front of PostgreSQL')
  t.match(text, /^postgres\+redis-cache +0\.004 +99\.5% +1\.00 +1,000 +2,000 +50\.0%$/m)
  t.match(text, /^postgres\+local-cache +0\.004 +99\.5% +0\.00 +10\.0 +2,000 +99\.5%$/m)
  const words = plainWords(r).join('\n')
  t.match(words, 'postgres: 1.00 PostgreSQL statements per request')
  t.match(words, 'postgres+local-cache: 0.004 database statements per request, 99.5% of reads answered by the cache, auth step 10.0 µs: it hid 99.5% of postgres\'s auth step (2,000 µs)')
  t.match(words, 'A shared cache takes the reads off the database, not the round trip')
  const noPostgres = report()
  noPostgres.results = noPostgres.results.filter((x) => x.mode !== 'postgres')
  t.match(formatReport(noPostgres), /^postgres\+local-cache +0\.004 +99\.5% +0\.00 +10\.0 +- +-$/m, 'nothing to hide from without a postgres row')
})

t.test('jwt-eddsa: logins by the issuer, what a refresh costs it, EdDSA beside HS256', async (t) => {
  const text = formatReport(report())
  t.match(text, /^jwt-eddsa +issuer-1 10 +400 +3\.50 \/ 9\.00 +950 +160 +12\.0$/m)
  const words = plainWords(report()).join('\n')
  t.match(words, 'jwt-eddsa: the logins were answered by issuer-1')
  t.match(words, 'checking an Ed25519 signature took 160 µs against 12.0 µs for HS256 in jwt')
  t.match(words, 'A refresh cost the issuer 3.50 ms (p50, through the balancer) and 950 µs of its CPU')
  t.match(words, 'cookie: no store and 0.00 round trips; the session travels sealed (encrypted and authenticated) in 66 bytes')
  t.match(words, /postgres keeps ~195 bytes per session \(in PostgreSQL, table and indexes\)/)
})

t.test('the charts: store round trips for every mode with a store, each new mode in a colour of its own', async (t) => {
  const charts = buildCharts(report())
  const cost = charts.find((c) => c.id === 'request-cost')
  t.match(cost?.title, 'Store round trips')
  const values = (cost?.spec as { data: { values: Array<{ mode: string, measure: string, value: number }> } }).data.values
  t.same(values.filter((v) => v.measure === 'store round trips per request').map((v) => [v.mode, v.value]).filter(([, v]) => v !== 0),
    [['redis', 1], ['jwt-revocation', 1], ['postgres', 1], ['postgres+redis-cache', 0.004], ['postgres+local-cache', 0.004]])
  const throughput = JSON.stringify(charts.find((c) => c.id === 'throughput')?.spec)
  const bars = (JSON.parse(throughput) as { layer: Array<{ encoding: { color?: { scale?: { range?: string[] } } } }> }).layer[0]
  const range = bars?.encoding.color?.scale?.range ?? []
  t.equal(range.length, 9, 'nine modes')
  t.equal(new Set(range).size, 9, `nine colours (${range.join(' ')})`)
})
