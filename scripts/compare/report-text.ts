import type { KidRun } from './measure.ts'
import { certaintyWords, ci, differencesTable, differencesTitle, ROUNDS_TITLE, roundsTable } from './report-certainty.ts'
import { dec, int, pct, range, table, typicalAuthUs, us, type TableData } from './report-format.ts'
import { storeName, storeSections, storeWords } from './report-stores.ts'
import { baseMode } from './mode-names.ts'
import type { CompareReport, ModeResult } from './run-compare.ts'
import type { WearIn } from './steady-state.ts'

export { dec, int, pct, table, typicalAuthUs, type TableData } from './report-format.ts'

const bytes = (n: number | null): string => n === null ? '-' : `${int(n)} B`
const authText = (r: ModeResult): string => `${us(typicalAuthUs(r).us)} µs`

const tableData = (header: string[], rows: string[][], leftColumns = 1): TableData => ({ header, rows, leftColumns })

function throughputTable (results: ModeResult[]): TableData {
  return tableData(
    ['mode', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'requests', '2xx', '401', 'errors', 'refused', 'expected'],
    results.map((r) => [
      r.mode,
      int(r.rps) + ci(r, 'rps'),
      dec(r.latencyMs.p50, 2) + ci(r, 'p50'),
      dec(r.latencyMs.p90, 2),
      dec(r.latencyMs.p99, 2) + ci(r, 'p99'),
      int(r.requests),
      int(r.ok),
      int(r.unauthorized),
      int(r.errors),
      pct(r.authFailureRate),
      pct(r.expectedAuthFailureRate)
    ]))
}

function costTable (results: ModeResult[]): TableData {
  return tableData(
    ['mode', 'auth µs mean', 'auth µs p50/p99', 'store trips/req', 'server CPU µs/req', 'balancer CPU µs/req', 'store CPU µs/req', 'credential', 'state/session'],
    results.map((r) => [
      r.mode,
      us(r.authUsPerRequest),
      r.serverTimingAuthUs === null ? '-' : `${us(r.serverTimingAuthUs.p50)}${ci(r, 'authP50')} / ${us(r.serverTimingAuthUs.p99)}`,
      dec(r.storeCommandsPerRequest, 2),
      int(r.cpuUsPerRequest) + ci(r, 'cpuUsPerRequest'),
      r.balancerCpuUsPerRequest === null ? '-' : int(r.balancerCpuUsPerRequest),
      storeCpu(r),
      bytes(r.memoryCost.credentialBytes),
      baseMode(r.mode) === 'jwt' ? '0 B' : bytes(r.memoryCost.bytesPerSession)
    ]))
}

/** The run's own stores' CPU per request ("Redis 14.2", "PostgreSQL 103", both for a cache row); "-" where there is none or it could not be seen (--url). */
function storeCpu (r: ModeResult): string {
  const parts: Array<[string, number | null | undefined]> = [['Redis', r.redisCpuUsPerRequest], ['PostgreSQL', r.postgresCpuUsPerRequest]]
  const seen = parts.flatMap(([name, value]) => value == null ? [] : [`${name} ${us(value)}`])
  return seen.length === 0 ? '-' : seen.join(' + ')
}

function perServerTable (results: ModeResult[]): TableData {
  const servers = [...new Set(results.flatMap((r) => Object.keys(r.perServer)))]
  return tableData(
    ['mode', ...servers, 'servers counted', 'client got'],
    results.map((r) => [
      r.mode,
      ...servers.map((s) => {
        const p = r.perServer[s]
        return p === undefined ? '-' : `${int(p.ok)} / ${int(p.unauthorized)}`
      }),
      `${int(r.serverCounted.ok)} / ${int(r.serverCounted.unauthorized)}`,
      `${int(r.ok)} / ${int(r.unauthorized)}`
    ]))
}

function perServerCpuTable (results: ModeResult[]): TableData {
  const servers = [...new Set(results.flatMap((r) => Object.keys(r.perServer)))]
  return tableData(
    ['mode', ...servers],
    results.map((r) => [
      r.mode,
      ...servers.map((s) => {
        const p = r.perServer[s]
        return p === undefined ? '-' : `${int(p.cpuUsPerRequest)} µs (${dec(p.cpuCores, 2)} cores)`
      })
    ]))
}

/** The jwt results whose connections held tokens from more than one key, older key last. */
function rotated (results: ModeResult[]): Array<{ r: ModeResult, kids: Array<[string, KidRun]> }> {
  return results.flatMap((r) => {
    const byKid = Object.entries(r.byKid ?? {})
    if (byKid.length < 2) return []
    const newer = r.keyRotation?.kids.newer
    return [{ r, kids: byKid.sort(([a], [b]) => a === newer ? -1 : b === newer ? 1 : a.localeCompare(b)) }]
  })
}

function kidTable (report: CompareReport): TableData {
  return tableData(
    ['mode', 'kid', 'signed', 'connections', '2xx', '401', 'other', 'auth µs p50/p99'],
    rotated(report.results).flatMap(({ r, kids }) => kids.map(([kid, k]) => [
      r.mode,
      kid,
      r.keyRotation === null || r.keyRotation === undefined ? '-' : kid === r.keyRotation.kids.newer ? 'after the restart' : 'before it',
      int(k.connections),
      int(k.ok),
      int(k.unauthorized),
      int(k.other),
      k.authUs === null ? '-' : `${us(k.authUs.p50)} / ${us(k.authUs.p99)}`
    ])), 3)
}

function sweepTable (report: CompareReport): TableData {
  const points = report.sweep ?? []
  const modes = [...new Set(points.map((p) => p.mode))]
  const sizes = [...new Set(points.map((p) => p.servers))]
  return tableData(
    ['servers', ...modes.flatMap((m) => [`${m} req/s`, `${m} refused`]), ...(modes.includes('memory') ? ['(N-1)/N'] : [])],
    sizes.map((n) => [
      String(n),
      ...modes.flatMap((m) => {
        const p = points.find((x) => x.servers === n && x.mode === m)
        return p === undefined ? ['-', '-'] : [int(p.rps) + (p.balancerIsBottleneck ? '*' : ''), pct(p.authFailureRate)]
      }),
      ...(modes.includes('memory') ? [pct((n - 1) / n)] : [])
    ]))
}

/** The plain-words reading of the numbers: what a person should take away. */
export function plainWords (report: CompareReport): string[] {
  const lines: string[] = []
  const by = (mode: string): ModeResult | undefined => report.results.find((r) => r.mode === mode)
  const memory = by('memory')
  const redis = by('redis')
  const jwt = by('jwt')
  const revocable = by('jwt-revocation')
  if (memory !== undefined) {
    const n = memory.servers
    lines.push(`memory: ${pct(memory.authFailureRate)} of logged-in requests were refused (401 unknown_session); a round-robin balancer predicts ${pct(memory.expectedAuthFailureRate)}, ` +
      `(N-1)/N with N = ${n}, because only the 1 server that took the login holds a given session.${n === 1 ? ' With one server nothing is refused: the problem starts at two.' : ''}`)
  }
  for (const r of report.results.filter((x) => baseMode(x.mode) !== 'memory' && !x.mode.includes('#'))) {
    lines.push(`${r.mode}: ${r.unauthorized === 0 ? 'no request was refused' : `${pct(r.authFailureRate)} of requests were refused (expected none)`}: every server can check every credential.`)
  }
  if (redis !== undefined) {
    const other = [jwt, memory].filter((r) => r !== undefined).map((r) => `${authText(r)} in ${r.mode}`)
    lines.push(`redis: the auth step made ${dec(redis.storeCommandsPerRequest, 2)} Redis commands per request and took ${authText(redis)}` +
      ` (${typicalAuthUs(redis).what}${other.length > 0 ? `; vs ${other.join(', ')}` : ''}): a network round trip on every request${(report.config.storeLatencyMs ?? report.config.redisLatencyMs) > 0 ? `, here with ${report.config.storeLatencyMs ?? report.config.redisLatencyMs} ms added by the delay proxy` : ''}, and under load the wait for the event loop to pick its answer up, which grows with the requests beside it.`)
  }
  if (jwt !== undefined) {
    const sessionId = memory?.memoryCost.credentialBytes ?? redis?.memoryCost.credentialBytes ?? null
    const token = jwt.memoryCost.credentialBytes
    lines.push(`jwt: no lookup and no server-side state${token === null ? '' : `, for a ${bytes(token)} token on every request${sessionId === null ? '' : ` instead of a ${bytes(sessionId)} session id`}`}; checking its HMAC and claims took ${authText(jwt)} (${typicalAuthUs(jwt).what}).`)
  }
  if (revocable !== undefined) {
    const other = [jwt, redis].filter((r) => r !== undefined).map((r) => `${authText(r)} in ${r.mode}`)
    lines.push(`jwt-revocation: with JWT_REVOCATION=redis every request also asks Redis whether its token was revoked: ${dec(revocable.storeCommandsPerRequest, 2)} Redis commands per request, ` +
      `and the auth step took ${authText(revocable)} (${typicalAuthUs(revocable).what}${other.length > 0 ? `; vs ${other.join(', ')}` : ''}). Logout then works on every server, but the state is back: ` +
      'a store every server needs on every request, and a 503 for everyone while it is down (npm run demo, step 9).')
  } else if (jwt !== undefined) {
    lines.push('revocation: not measured in this run; --modes jwt,jwt-revocation shows what JWT_REVOCATION=redis (logout that works everywhere) costs per request.')
  }
  for (const { r, kids } of rotated(report.results)) {
    const rotation = r.keyRotation ?? null
    const [newer, older] = [kids[0], kids[kids.length - 1]] as [[string, KidRun], [string, KidRun]]
    const accepted = older[1].unauthorized === 0 && older[1].other === 0
    const setup = rotation === null
      ? `${r.mode}: the connections held tokens from ${kids.length} keys`
      : `key rotation (${r.mode}): with two keys in JWT_SECRETS (${rotation.kids.newer} signing, ${rotation.kids.older} still accepted, as in the middle of a rotation)`
    const a = older[1].authUs?.p50
    const b = newer[1].authUs?.p50
    let cost = ''
    if (a !== undefined && b !== undefined) {
      // Server-Timing has 1 µs resolution; a median moves by a few µs on a busy machine.
      const same = Math.abs(a - b) <= Math.max(2, 0.2 * Math.max(a, b))
      cost = `; the auth step's median was ${us(a)} µs for the ${older[0]} key's tokens and ${us(b)} µs for the ${newer[0]} key's` +
        (same ? ': the same, within the noise. The kid picks the key, one HMAC either way: rotation costs nothing per request' : `, ${Math.round(Math.abs(a - b) / Math.min(a, b) * 100)}% apart: more than the noise this measure usually has, so rerun with --runs 3 before reading anything into it`)
    }
    lines.push(`${setup}, the ${int(older[1].connections)} connections holding tokens signed with ${older[0]} got ${int(older[1].ok)} 2xx and ${int(older[1].unauthorized)} 401` +
      `${accepted ? ': tokens from the older key are accepted, so no one is logged out' : ': some tokens from the older key were refused'}${cost}.`)
  }
  lines.push(...storeWords(report))
  const stored = [memory, redis, by('postgres')].filter((r) => r?.memoryCost.bytesPerSession != null) as ModeResult[]
  if (stored.length > 0) {
    lines.push(`state: ${stored.map((r) => `${r.mode} keeps ~${int(r.memoryCost.bytesPerSession as number)} bytes per session (${r.mode === 'memory' ? 'in one server\'s heap' : r.mode === 'redis' ? 'in Redis' : 'in PostgreSQL, table and indexes'})`).join('; ')}` +
      ` — about ${stored.map((r) => `${dec((r.memoryCost.bytesPerSession as number) * 1e6 / 1048576, 0)} MiB per million sessions in ${r.mode}`).join(', ')}.`)
  }
  if (report.results.length > 1) {
    const sorted = [...report.results].sort((a, b) => b.rps - a.rps)
    const top = sorted[0] as ModeResult
    const bottom = sorted[sorted.length - 1] as ModeResult
    const busy = report.results.some((r) => r.bottleneck.machineBusy >= 0.9)
    lines.push(`throughput: from ${int(top.rps)} req/s (${top.mode}) to ${int(bottom.rps)} req/s (${bottom.mode}). Most of a request's cost is HTTP, the balancer and the route, not the auth step, ` +
      `so req/s moves less than the auth columns${busy ? '; and the machine was saturated, so req/s also reflects whatever else ran on it' : ''}.`)
  }
  lines.push(...certaintyWords(report))
  if (report.results.some((r) => r.bottleneck.balancerIsBottleneck)) {
    lines.push('balancer: in this run the balancer, not the app servers, set the pace (see the balancer check): read req/s and latency as a measurement of the balancer, and compare modes by the auth-step columns.')
  }
  return lines
}

/**
 * The numbers, section by section: each a line that says what it holds, a table and the notes
 * under it. The text report prints them in columns; the HTML report as tables that fit its page.
 */
export interface ReportSection {
  id: string
  title: string
  table: TableData
  notes: string[]
}

export function reportSections (report: CompareReport): ReportSection[] {
  const c = report.config
  const sections: ReportSection[] = []
  const section = (id: string, title: string, data: TableData, notes: string[] = []): void => { sections.push({ id, title, table: data, notes }) }
  section('throughput', 'Throughput and failures, as the client saw them through the balancer (refused = 401 / (2xx + 401)):', throughputTable(report.results))
  section('auth-cost', `Cost of the auth step, measured on the app servers under the load above (${c.connections} connections, after the warm-up): the mean from their /metrics, p50/p99 from every response's Server-Timing:`, costTable(report.results),
    [`(store trips: ${[...new Set(report.results.map((r) => `${storeName(r.mode)} in ${baseMode(r.mode)}`))].join(', ')}; store CPU: the run's own Redis or PostgreSQL processes, per request; Redis runs every command on one thread, so 1,000,000 / its figure is one node's ceiling in req/s, which npm run scale plans with; credential: the bytes sent on every request; state: what the servers or their store keep per session)`])
  const inFlight = report.results.filter((r) => r.serverCounted.ok + r.serverCounted.unauthorized > r.ok + r.unauthorized)
  section('per-server', 'Per server, from each server\'s own counters (2xx / 401):', perServerTable(report.results),
    inFlight.length > 0 ? ['(the servers can count a few more than the client got: requests in flight when the load stopped, at most one per connection)'] : [])
  section('per-server-cpu', 'CPU per request each server answered, and the share of a core it used:', perServerCpuTable(report.results))
  if (rotated(report.results).length > 0) {
    section('key-rotation', 'Per signing key: the jwt servers list two keys in JWT_SECRETS, the first signs; half the sessions logged in before the servers restarted with the new key first, half after:', kidTable(report))
  }
  for (const s of storeSections(report)) section(s.id, s.title, s.table, s.notes)
  // (A report saved before the intervals has no differences to show.)
  if (report.results.length > 1 && report.config.runs > 1 && report.differences !== undefined) section('differences', differencesTitle(report), differencesTable(report))
  if (report.results.some((r) => r.allRuns !== undefined)) section('rounds', ROUNDS_TITLE, roundsTable(report))
  if (report.sweep !== null) section('sweep', 'Sweep over cluster sizes (req/s and refused share; * = balancer-bound):', sweepTable(report))
  section('balancer-check', 'Balancer check (CPU in cores: 1.00 = one core flat out):', tableData(['mode', 'verdict', 'CPU, cores', 'warnings'], report.results.map((r) => {
    const b = r.bottleneck
    return [r.mode, b.warnings.length === 0 ? 'ok' : 'WARNING', balancerCores(r), b.warnings.join('; ')]
  }), 4), report.notes.map((note) => `Note: ${note}`))
  return sections
}

function balancerCores (r: ModeResult): string {
  const b = r.bottleneck
  return `balancer ${b.balancerCores === null ? '?' : dec(b.balancerCores, 2)}, app servers ${dec(b.serverCores, 2)}, load generator ${dec(b.loadGeneratorCores, 2)}, machine ${pct(b.machineBusy)} busy`
}

/**
 * "a wear-in of 30,000 requests per app server before each cluster's first round (6.0 to 30.0 s
 * here, 2 stopped by the 30 s cap) and a warm-up until steady (at most 8 s; 4.1 to 8.1 s here)",
 * or the fixed warm-up of a report written before.
 */
export function warmupWords (report: CompareReport): string {
  const c = report.config
  const worn = report.results.map((r) => r.wearIn).filter((w): w is WearIn => w != null && w.target > 0)
  const wearIn = worn.length === 0 || c.wearInPerServer === undefined
    ? ''
    : `a wear-in of ${int(c.wearInPerServer)} requests per app server before each cluster's first round (${range(worn.map((w) => w.seconds), (n) => dec(n, 1))} s here` +
      `${worn.some((w) => !w.reached) ? `, ${worn.filter((w) => !w.reached).length} stopped by the ${c.wearInCapSeconds ?? '?'} s cap` : ''}) and `
  if (c.warmupSeconds <= 0) return wearIn === '' ? 'no warm-up' : `${wearIn}no warm-up`
  if (c.warmupRule === undefined) return `${c.warmupSeconds} s of warm-up`
  const seconds = report.results.flatMap((r) => (r.allRuns ?? []).map((run) => run.warmup?.seconds)).filter((x): x is number => x !== undefined)
  return `${wearIn}a warm-up until steady (at most ${c.warmupSeconds} s${seconds.length > 0 ? `; ${range(seconds, (n) => dec(n, 1))} s here` : ''})`
}

export function formatReport (report: CompareReport): string {
  const c = report.config
  const out: string[] = []
  out.push(`Compared on ${c.target}; ${c.connections} connections (one session each), ${c.durationSeconds} s of load after ${warmupWords(report)}` +
    // A report saved before the intervals (--from an older JSON) gave medians.
    `${c.runs > 1 ? `, ${c.runs} runs per mode ${c.warmupRule === undefined ? '(the median)' : 'in a rotating order (the mean, ±its 95% interval)'}` : ''}.` +
    ` The machine: ${c.machine.cores} cores, load average ${dec(c.machine.loadAverageAtStart, 1)} at the start (the round-by-round table says how busy it was during each run).`)
  for (const s of reportSections(report)) {
    out.push('', s.title)
    if (s.id === 'balancer-check') {
      // Prose more than columns in a terminal: a line per mode, its warnings under it.
      const width = Math.max(7, ...report.results.map((x) => x.mode.length))
      for (const r of report.results) {
        out.push(`  ${r.mode.padEnd(width)} ${r.bottleneck.warnings.length === 0 ? 'ok' : 'WARNING'}: ${balancerCores(r)}`)
        for (const w of r.bottleneck.warnings) out.push(`${' '.repeat(width + 3)}- ${w}`)
      }
    } else {
      out.push(table(s.table.header, s.table.rows, s.table.leftColumns))
    }
    out.push(...s.notes)
  }
  out.push('')
  out.push('In plain words:')
  for (const line of plainWords(report)) out.push(`  - ${line}`)
  return out.join('\n')
}
