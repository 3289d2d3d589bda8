import t, { type Test } from 'tap'
import { DEFAULT_ASSUMPTIONS, type Assumptions } from '../../../scripts/scale/assumptions.ts'
import { planMode } from '../../../scripts/scale/plan.ts'
import type { MeasuredMode } from '../../../scripts/scale/read-compare.ts'

// Round numbers, so every figure below can be checked by hand: each core half busy, a request
// moving 157 + 43 + 800 = 1,000 bytes each way through the balancer, a 1 Gbit/s NIC, 100 MB of Redis.
const a: Assumptions = {
  ...DEFAULT_ASSUMPTIONS,
  utilisation: 0.5,
  balancerCores: 2,
  nicGbit: 1,
  requestBytes: 157,
  responseBytes: 800,
  storeMemoryGb: 0.1,
  replicas: 1,
  pgPrimaryCores: 4,
  logoutShare: 0.5,
  redisEntryBytes: null,
  redisUsPerCommand: 40,
  pgUsPerStatement: 50
}
const target = { rps: 10_000, sessions: 1_000_000 }
const mode = (m: Partial<MeasuredMode> & { mode: string }): MeasuredMode => ({
  name: m.mode,
  rps: 1000,
  serverUsPerRequest: 100,
  balancerUsPerRequest: 50,
  storeTripsPerRequest: 0,
  store: null,
  cacheCommandsPerRequest: 0,
  redisUsPerRequest: null,
  postgresUsPerRequest: null,
  credentialBytes: 43,
  bytesPerSession: 0,
  ...m
})
const close = (t: Test, actual: number, expected: number, what: string): void => { t.ok(Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${actual} = ${expected}`) }

t.test('app servers, balancer and network: rps × CPU per request / utilisation, bytes × rps', async (t) => {
  const p = planMode(mode({ mode: 'jwt' }), target, a)
  t.equal(p.appCores, 2, '10,000 × 100 µs = 1 core of work, 2 at half busy')
  close(t, p.balancerCores, 1, '10,000 × 50 µs / 0.5')
  t.equal(p.balancerInstancesByCpu, 1, 'one instance of 2 threads')
  t.equal(p.balancerInstancesByNetwork, 1, '10 MB/s each way of a 62.5 MB/s (half of 1 Gbit/s) NIC')
  t.equal(p.network.bytesEachWay, 1000)
  close(t, p.network.inGbit, 0.016, '10,000 × 200 B × 8')
  close(t, p.network.outGbit, 0.064, '10,000 × 800 B × 8')
  close(t, p.network.credentialGbit, 0.00344, '10,000 × 43 B × 8')
  t.equal(p.redis, null)
  t.equal(p.postgres, null)
  t.equal(p.heap, null)
  t.same(p.limits.map((l) => [l.kind, l.rps]), [['balancer CPU', 20_000], ['network', 62_500]], 'no store: one balancer instance (2 threads × 0.5 / 50 µs) fills first, then its NIC')
  t.equal(p.first.kind, 'balancer CPU')
  t.equal(p.firstShared, null, 'nothing shared: more instances lift every limit')
})

t.test('redis: a node\'s one thread takes utilisation / µs per command; memory is entries × bytes, doubled by a replica', async (t) => {
  const m = mode({ mode: 'redis', store: 'redis', storeTripsPerRequest: 1, redisUsPerRequest: 20, bytesPerSession: 200 })
  const p = planMode(m, target, a)
  const r = p.redis
  if (r === null) throw new Error('expected a Redis plan')
  t.match(r, { role: 'sessions', commandsPerRequest: 1, usPerCommand: 20, usPerCommandFrom: 'measured', opsPerSecond: 10_000, opsPerNode: 25_000, entries: 1_000_000, bytesPerEntry: 200, bytesPerEntryFrom: 'measured' })
  t.equal(r.dataBytes, 2e8, '1,000,000 × 200 B')
  t.equal(r.primariesByOps, 1, '10,000 commands/s of 25,000 a node')
  t.equal(r.primariesByMemory, 2, '200 MB in nodes of 100 MB')
  t.match(r, { primaries: 2, nodes: 4, memoryBytes: 4e8 })
  t.same(p.limits.map((l) => [l.kind, l.rps]), [
    ['store memory', 5_000],
    ['balancer CPU', 20_000],
    ['store thread', 25_000],
    ['network', 62_500]
  ], 'a node holds 500,000 sessions: with sessions growing with the rate (100 per req/s), full at 5,000 req/s')
  t.equal(p.first.kind, 'store memory')
  t.match(p.first.beyond, /2 primaries by memory/)

  const roomier = planMode(m, target, { ...a, storeMemoryGb: 1, balancerCores: 4 })
  t.equal(roomier.first.kind, 'store thread', 'with 1 GB nodes and 4-thread balancers the store\'s one thread fills first')
  t.equal(roomier.first.rps, 25_000)
  const bigStore = planMode({ ...m, redisUsPerRequest: 5 }, target, { ...a, storeMemoryGb: 1 })
  t.match(bigStore, { first: { kind: 'balancer CPU', rps: 20_000 }, firstShared: { kind: 'store memory', rps: 50_000 } }, 'a faster Redis: the balancer fills first, and the shared state\'s limit is still named')

  const unmeasured = planMode({ ...m, redisUsPerRequest: null }, target, a).redis
  t.match(unmeasured, { usPerCommand: 40, usPerCommandFrom: 'assumed', opsPerNode: 12_500 }, 'no Redis CPU in the JSON: --redis-us-per-command')
  const twoTrips = planMode({ ...m, storeTripsPerRequest: 2, redisUsPerRequest: 40 }, target, a)
  t.equal(twoTrips.redis?.usPerCommand, 20, '40 µs a request over 2 commands')
  t.equal(twoTrips.limits.find((l) => l.kind === 'store thread')?.rps, 12_500, '25,000 commands/s a node, 2 a request')
})

t.test('jwt-revocation: the list holds logoutShare of the live tokens, each weighed as redis mode\'s session unless told', async (t) => {
  const m = mode({ mode: 'jwt-revocation', store: 'redis', storeTripsPerRequest: 1, redisUsPerRequest: 25, credentialBytes: 271 })
  const r = planMode(m, target, a, 100).redis
  t.match(r, { role: 'revocation list', entries: 500_000, bytesPerEntry: 100, bytesPerEntryFrom: 'measured', dataBytes: 5e7, primariesByMemory: 1, opsPerNode: 20_000 })
  t.match(planMode(m, target, { ...a, redisEntryBytes: 80 }, 100).redis, { bytesPerEntry: 80, bytesPerEntryFrom: 'assumed' }, '--redis-entry-bytes')
  t.match(planMode(m, target, a, null).redis, { bytesPerEntry: 213, bytesPerEntryFrom: 'assumed' }, 'no redis row to borrow from: 213 B')
  t.match(planMode(m, { ...target, sessions: 0 }, a, 100).limits.find((l) => l.kind === 'store memory'), { rps: Number.POSITIVE_INFINITY }, 'no sessions: memory never fills')
})

t.test('postgres: cores from the database\'s CPU per request; one primary takes cores × utilisation / µs', async (t) => {
  const m = mode({ mode: 'postgres', store: 'postgres', storeTripsPerRequest: 1, postgresUsPerRequest: 125, bytesPerSession: 200 })
  const p = planMode(m, target, a)
  t.match(p.postgres, { statementsPerRequest: 1, usPerRequest: 125, usPerRequestFrom: 'measured', usPerStatement: 125, statementsPerSecond: 10_000, cores: 2.5, statementsPerCore: 8_000, dataBytes: 2e8, memoryBytes: 4e8 })
  t.equal(p.redis, null)
  t.same(p.limits.map((l) => [l.kind, l.rps]), [['database primary', 16_000], ['balancer CPU', 20_000], ['network', 62_500]], '4 cores × 0.5 / 125 µs: 16,000 req/s, before the balancer')
  t.equal(p.first.kind, 'database primary')
  t.match(p.limits.find((l) => l.kind === 'database primary')?.beyond, /replicas do not help/)
  t.match(planMode({ ...m, postgresUsPerRequest: null }, target, a).postgres, { usPerRequest: 50, usPerRequestFrom: 'assumed' }, 'no PostgreSQL CPU in the JSON: statements × --pg-us-per-statement')
})

t.test('postgres with a shared Redis cache: both tiers, the cache sized like a session store', async (t) => {
  const m = mode({ mode: 'postgres+redis-cache', store: 'postgres', storeTripsPerRequest: 0.01, postgresUsPerRequest: 2, cacheCommandsPerRequest: 1, redisUsPerRequest: 20, bytesPerSession: 200 })
  const p = planMode(m, target, a, 150)
  t.match(p.redis, { role: 'cache', commandsPerRequest: 1, usPerCommand: 20, entries: 1_000_000, bytesPerEntry: 150 })
  t.match(p.postgres, { statementsPerRequest: 0.01, usPerRequest: 2, usPerStatement: 200 })
  t.equal(p.limits.find((l) => l.kind === 'database primary')?.rps, 1_000_000, 'the database is far from full: 4 × 0.5 / 2 µs')
  t.equal(p.first.kind, 'store memory', 'the cache\'s memory now fills first: 150 MB at 10,000 req/s in nodes of 100 MB')
  t.ok(Math.abs(p.first.rps - 20_000 / 3) < 1e-6, 'at 6,667 req/s')
  t.equal(planMode({ ...m, mode: 'postgres+local-cache', name: 'postgres+local-cache', cacheCommandsPerRequest: 0, redisUsPerRequest: null }, target, a).redis, null, 'a cache in each server: no Redis')
})

t.test('memory: sessions in the servers\' heaps, and one server is the limit without sticky routing', async (t) => {
  const p = planMode(mode({ mode: 'memory', bytesPerSession: 200 }), target, a)
  t.same(p.heap, { totalBytes: 2e8, perServerBytes: 1e8 }, '1,000,000 × 200 B over the 2 servers sticky routing spreads them on')
  t.same(p.first, { ...p.first, kind: 'one app server', rps: 5_000 }, '0.5 / 100 µs: one server\'s one thread')
  t.match(p.first.beyond, /sticky routing \(--strategy sticky\) to 2 servers/)
  t.equal(p.firstShared, p.first, 'and it is the shared state\'s limit: more servers do not lift it')
})
