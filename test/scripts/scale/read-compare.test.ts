import t, { type Test } from 'tap'
import { readCompareReport, ScaleInputError } from '../../../scripts/scale/read-compare.ts'

const row = (mode: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  mode,
  rps: 1000,
  cpuUsPerRequest: 80,
  balancerCpuUsPerRequest: 60,
  storeCommandsPerRequest: mode === 'jwt' ? 0 : 1,
  sessionCache: null,
  memoryCost: { credentialBytes: mode === 'jwt-revocation' ? 271 : 43, bytesPerSession: mode === 'jwt-revocation' ? null : 213, measuredAs: 'x' },
  ...extra
})
const report = (results: unknown[], config: Record<string, unknown> = {}): Record<string, unknown> => ({
  config: { runs: 3, machine: { cores: 2, loadAverageAtStart: 0.5 }, startedAt: '2026-11-30T22:30:19.063Z', target: 'a fresh local cluster per mode', storeLatencyMs: 0, ...config },
  results,
  sessionCosts: { redis: { bytesPerSession: 212.9 } }
})
const fails = (t: Test, data: unknown, pattern: RegExp, what: string): void => {
  let caught: unknown
  try {
    readCompareReport(data, 'x.json')
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof ScaleInputError, `${what}: a ScaleInputError`)
  t.match((caught as Error | undefined)?.message, new RegExp(`^x\\.json: .*${pattern.source}`), what)
}

t.test('a compare report\'s figures per mode, and where they came from', async (t) => {
  const r = readCompareReport(report([row('redis', { redisCpuUsPerRequest: 25.5 }), row('jwt-revocation'), row('jwt#2', { storeCommandsPerRequest: 0 })]), 'x.json')
  t.match(r.modes[0], { name: 'redis', mode: 'redis', store: 'redis', serverUsPerRequest: 80, balancerUsPerRequest: 60, storeTripsPerRequest: 1, redisUsPerRequest: 25.5, postgresUsPerRequest: null, credentialBytes: 43, bytesPerSession: 213 })
  t.match(r.modes[1], { mode: 'jwt-revocation', store: 'redis', bytesPerSession: 0, redisUsPerRequest: null }, 'no state per live session, and a report from before compare read the store\'s CPU')
  t.match(r.modes[2], { name: 'jwt#2', mode: 'jwt', store: null })
  t.same(r.source, { machineCores: 2, loadAverageAtStart: 0.5, startedAt: '2026-11-30T22:30:19.063Z', runs: 3, target: 'a fresh local cluster per mode', storeLatencyMs: 0 })
  t.equal(r.redisBytesPerSession, 212.9)
  const cached = readCompareReport(report([row('postgres+redis-cache', { storeCommandsPerRequest: 0.004, sessionCache: { lookups: 10, hitRatio: 0.99, cacheCommandsPerRequest: 1 } })]), 'x.json')
  t.match(cached.modes[0], { store: 'postgres', storeTripsPerRequest: 0.004, cacheCommandsPerRequest: 1 })
})

t.test('what is not a compare report, or lacks a figure, is named', async (t) => {
  fails(t, [], /not a compare report/, 'an array')
  fails(t, { hello: 1 }, /not a compare report/, 'another JSON')
  fails(t, { config: { sloP99Ms: 10 }, results: [{ mode: 'redis', capacity: {} }] }, /capacity report.*npm run compare -- --json FILE/, 'a --slo-p99-ms report says what to run instead')
  fails(t, report([]), /no results/, 'no modes')
  fails(t, report([row('redis', { cpuUsPerRequest: undefined })]), /redis has no cpuUsPerRequest/, 'a field missing')
  fails(t, report([row('redis', { cpuUsPerRequest: -3 })]), /redis's cpuUsPerRequest is -3: .*cannot be negative/, 'a negative figure')
  fails(t, report([row('redis', { redisCpuUsPerRequest: -1 })]), /redisCpuUsPerRequest is -1/, 'a negative store CPU')
  fails(t, report([row('redis', { balancerCpuUsPerRequest: null })]), /--url/, 'a --url run, whose balancer cannot be seen')
  fails(t, report([row('redis', { memoryCost: undefined })]), /redis has no memoryCost/, 'no memoryCost')
  fails(t, report([row('redis', { memoryCost: { credentialBytes: 43, bytesPerSession: null } })]), /bytesPerSession .*--sessions 0\): null, not measured in this run/, 'state not measured (--sessions 0)')
  fails(t, report([row('redis', { rps: 'fast' })]), /redis has no rps/, 'a string where a number goes')
  fails(t, report(['redis']), /results\[0\] is not a mode's result/, 'a row that is not an object')
})
