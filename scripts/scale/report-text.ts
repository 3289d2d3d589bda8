import { dec, int, table, us } from '../compare/report-format.ts'
import { ASSUMPTIONS, type Assumptions } from './assumptions.ts'
import type { Limit, ModePlan, ScaleTarget } from './plan.ts'
import type { MeasuredReport } from './read-compare.ts'

/** Everything the text report (and --json) holds: the plan, and what it was made from. */
export interface ScaleReport {
  from: string
  target: ScaleTarget
  assumptions: Assumptions
  /** The assumption flags set on the command line; the others are defaults. */
  given: Array<keyof Assumptions>
  measured: MeasuredReport
  plans: ModePlan[]
}

/** 1.8 GB, 130 MB, 12 kB: decimal units, as memory is sold. */
export function bytesText (n: number): string {
  if (!Number.isFinite(n)) return '-'
  if (n >= 1e12) return `${dec(n / 1e12, 1)} TB`
  if (n >= 1e9) return `${dec(n / 1e9, 1)} GB`
  if (n >= 1e6) return `${dec(n / 1e6, 0)} MB`
  if (n >= 1e3) return `${dec(n / 1e3, 0)} kB`
  return `${int(n)} B`
}

const rate = (n: number): string => Number.isFinite(n) ? int(n) : 'no limit'
const plural = (n: number, one: string, many: string): string => `${int(n)} ${n === 1 ? one : many}`
const from = (source: 'measured' | 'assumed'): string => source === 'measured' ? 'measured' : 'assumed'

function storeName (p: ModePlan): string {
  if (p.mode === 'memory') return 'each server\'s heap'
  if (p.postgres !== null) return p.redis !== null ? 'PostgreSQL + Redis cache' : p.mode === 'postgres+local-cache' ? 'PostgreSQL + cache in each server' : 'PostgreSQL'
  if (p.redis !== null) return `Redis (${p.redis.role})`
  return 'none'
}

function needsTable (plans: ModePlan[]): string {
  return table(
    ['mode', 'app-server cores', 'balancer cores', 'balancer instances', 'client Gbit/s in / out', 'credential Gbit/s'],
    plans.map((p) => [
      p.name,
      int(p.appCores),
      dec(p.balancerCores, 1),
      `${int(p.balancerInstances)}${p.balancerInstancesByNetwork > p.balancerInstancesByCpu ? ' (network)' : ''}`,
      `${dec(p.network.inGbit, 2)} / ${dec(p.network.outGbit, 2)}`,
      dec(p.network.credentialGbit, 3)
    ]))
}

function storeRows (p: ModePlan, a: Assumptions): string[][] {
  const rows: string[][] = []
  const copies = a.replicas === 0 ? 'one copy' : `${a.replicas + 1} copies`
  if (p.postgres !== null) {
    const pg = p.postgres
    rows.push([p.name, 'PostgreSQL', `${dec(pg.statementsPerRequest, 3)} stmt`, `${us(pg.usPerRequest)} (${from(pg.usPerRequestFrom)})`,
      int(pg.statementsPerSecond), pg.statementsPerCore === null ? '-' : `${int(pg.statementsPerCore)} stmt/core`,
      `${dec(pg.cores, 1)} cores`, `${bytesText(pg.memoryBytes)} (${copies})`])
  }
  if (p.redis !== null) {
    const r = p.redis
    rows.push([p.postgres !== null ? '' : p.name, `Redis, ${r.role}`, `${dec(r.commandsPerRequest, 2)} cmd`, `${us(r.usPerCommand * r.commandsPerRequest)} (${from(r.usPerCommandFrom)})`,
      int(r.opsPerSecond), `${int(r.opsPerNode)} cmd/node`,
      `${plural(r.primaries, 'primary', 'primaries')}, ${plural(r.nodes, 'node', 'nodes')}`, `${bytesText(r.memoryBytes)} (${copies})`])
  }
  if (p.heap !== null) {
    rows.push([p.name, storeName(p), '-', '-', '-', '-', '-', `${bytesText(p.heap.totalBytes)} (${bytesText(p.heap.perServerBytes)} a server)`])
  }
  if (rows.length === 0) rows.push([p.name, storeName(p), '-', '-', '-', '-', '-', '0 B'])
  return rows
}

function storesTable (plans: ModePlan[], a: Assumptions): string {
  return table(['mode', 'store', 'trips/req', 'store µs/req', 'trips/s', 'one unit takes', 'needed', 'memory'], plans.flatMap((p) => storeRows(p, a)), 2)
}

const LIMIT_COLUMNS = ['store thread', 'store memory', 'database primary', 'one app server', 'balancer CPU', 'network'] as const

function limitsTable (plans: ModePlan[], targetRps: number): string {
  const at = (l: Limit | null): string => l === null ? 'nothing shared' : `${l.kind}, ${rate(l.rps)}`
  return table(
    ['mode', ...LIMIT_COLUMNS, 'stops first at', 'shared state stops at', 'the target'],
    plans.map((p) => [
      p.name,
      ...LIMIT_COLUMNS.map((kind) => {
        const limit = p.limits.find((l) => l.kind === kind)
        return limit === undefined ? '-' : rate(limit.rps)
      }),
      at(p.first),
      at(p.firstShared),
      p.first.rps >= targetRps ? 'within one' : `${dec(targetRps / p.first.rps, 1)}× past it`
    ]))
}

function limitWords (p: ModePlan, targetRps: number): string {
  const first = p.first
  const words = [`  - ${p.name}: ${first.unit} fills first, at ${rate(first.rps)} req/s${first.rps < targetRps ? `; past it: ${first.beyond}` : `, above the target (${first.beyond})`}.`]
  const shared = p.firstShared
  if (shared === null) {
    words.push('Nothing shared fills: it scales out with app servers and balancer instances alone.')
  } else if (shared !== first) {
    words.push(`The shared state next: ${shared.unit}, at ${rate(shared.rps)} req/s${shared.rps < targetRps ? `; past it: ${shared.beyond}` : `, above the target (${shared.beyond})`}.`)
  }
  if (p.mode === 'memory') words.push('Without sticky routing it cannot scale out at all: behind a round robin a second server refuses the first one\'s sessions (compare: 2 in 3 refused with 3 servers).')
  return words.join(' ')
}

function measuredTable (r: ScaleReport): string {
  return table(
    ['mode', 'req/s here', 'server µs/req', 'balancer µs/req', 'store trips/req', 'Redis µs/req', 'PostgreSQL µs/req', 'credential', 'state/session'],
    r.measured.modes.map((m) => [
      m.name,
      int(m.rps),
      us(m.serverUsPerRequest),
      us(m.balancerUsPerRequest),
      dec(m.storeTripsPerRequest, 3),
      m.redisUsPerRequest === null ? '-' : us(m.redisUsPerRequest),
      m.postgresUsPerRequest === null ? '-' : us(m.postgresUsPerRequest),
      `${int(m.credentialBytes)} B`,
      `${int(m.bytesPerSession)} B`
    ]))
}

function sourceLine (r: ScaleReport): string {
  const s = r.measured.source
  const parts = [
    s.machineCores === null ? null : `${s.machineCores} cores`,
    s.loadAverageAtStart === null ? null : `load average ${dec(s.loadAverageAtStart, 2)} at the start`,
    s.runs === null ? null : `${s.runs} run${s.runs === 1 ? '' : 's'} per mode`,
    s.storeLatencyMs === null || s.storeLatencyMs === 0 ? null : `stores ${s.storeLatencyMs} ms away`,
    s.startedAt
  ].filter((x) => x !== null)
  return `${r.from}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}${s.target === null ? '' : `: ${s.target}`}`
}

function assumptionLines (r: ScaleReport): string[] {
  const used = new Set<string>()
  for (const p of r.plans) {
    if (p.redis !== null) {
      if (p.redis.usPerCommandFrom === 'assumed') used.add('redisUsPerCommand')
      if (p.redis.role !== 'sessions') used.add('redisEntryBytes')
    }
    if (p.postgres?.usPerRequestFrom === 'assumed') used.add('pgUsPerStatement')
    if (p.mode === 'jwt-revocation') used.add('logoutShare')
    if (p.postgres !== null) used.add('pgPrimaryCores')
    if (p.redis !== null || p.postgres !== null) used.add('replicas')
    if (p.redis !== null) used.add('storeMemoryGb')
  }
  for (const key of ['utilisation', 'balancerCores', 'nicGbit', 'requestBytes', 'responseBytes']) used.add(key)
  return ASSUMPTIONS.filter((info) => used.has(info.key)).map((info) => {
    const value = r.assumptions[info.key]
    const shown = value === null
      ? `${int(r.measured.redisBytesPerSession ?? 213)} B${r.measured.redisBytesPerSession === null ? '' : ' (redis mode\'s, measured)'}`
      : `${value} ${info.unit}`
    return `  --${info.flag} ${shown}${r.given.includes(info.key) ? ' (set)' : ''}: ${info.why}`
  })
}

/** The whole text report. */
export function formatScaleReport (r: ScaleReport): string {
  const t = r.target
  const a = r.assumptions
  return [
    `What each mode needs at ${int(t.rps)} req/s and ${int(t.sessions)} live sessions, each core planned ${Math.round(a.utilisation * 100)}% busy. Per-request figures from ${sourceLine(r)}.`,
    '',
    'App servers, balancer and network (every request crosses the balancer in and out: it carries the credential twice):',
    needsTable(r.plans),
    '',
    'The store each request asks (trips/req and store µs/req measured here unless marked assumed; one unit: a Redis node\'s one command thread, or one PostgreSQL core):',
    storesTable(r.plans, a),
    '',
    `Where each mode stops scaling: the req/s at which one unit is full (sessions growing with the rate, ${int(t.sessions / t.rps)} per req/s as in the target):`,
    limitsTable(r.plans, t.rps),
    '',
    'In plain words:',
    ...r.plans.map((p) => limitWords(p, t.rps)),
    '',
    'Measured on this machine (from the JSON):',
    measuredTable(r),
    '',
    'Assumed (not in the JSON; each a flag):',
    ...assumptionLines(r),
    '',
    'Not counted: logins (a deliberate scrypt each) and jwt-eddsa\'s refreshes at the issuer, the stores\' own network, a cache\'s entries in each server (postgres+local-cache), and the load balancer or DNS in front of several balancer instances.'
  ].join('\n')
}
