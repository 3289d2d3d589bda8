import type { CompareReport, ModeResult } from './run-compare.ts'

/** Columns of text, numbers right-aligned, with a rule under the header. */
export function table (header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells
    .map((c, i) => i < leftColumns ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))
    .join('  ').trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

export const int = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'
export const dec = (n: number, digits = 1): string => Number.isFinite(n) ? n.toFixed(digits) : '-'
export const pct = (n: number): string => Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : '-'
const plusMinus = (relative: number, runs: number): string => runs > 1 && Number.isFinite(relative) ? ` ±${Math.round(relative * 100)}%` : ''
const bytes = (n: number | null): string => n === null ? '-' : `${int(n)} B`
/**
 * The typical auth step: the median of the Server-Timing values when the responses carried
 * them, else the mean from /metrics. On a busy machine the mean is pulled far up by the few
 * requests whose process was descheduled mid-step; the median is what a request usually costs.
 */
export function typicalAuthUs (r: ModeResult): { us: number, what: string } {
  return r.serverTimingAuthUs !== null ? { us: r.serverTimingAuthUs.p50, what: 'median' } : { us: r.authUsPerRequest, what: 'mean' }
}
/** Microseconds: one decimal below 100, whole numbers above. */
const us = (n: number): string => n < 100 ? dec(n, 1) : int(n)
const authText = (r: ModeResult): string => `${us(typicalAuthUs(r).us)} µs`

function throughputTable (results: ModeResult[]): string {
  return table(
    ['mode', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'requests', '2xx', '401', 'errors', 'refused', 'expected'],
    results.map((r) => [
      r.mode,
      int(r.rps) + plusMinus(r.spread.rps.relative, r.runs),
      dec(r.latencyMs.p50, 2),
      dec(r.latencyMs.p90, 2),
      dec(r.latencyMs.p99, 2) + plusMinus(r.spread.p99.relative, r.runs),
      int(r.requests),
      int(r.ok),
      int(r.unauthorized),
      int(r.errors),
      pct(r.authFailureRate),
      pct(r.expectedAuthFailureRate)
    ]))
}

function costTable (results: ModeResult[]): string {
  return table(
    ['mode', 'auth µs mean', 'auth µs p50/p99', 'Redis cmd/req', 'server CPU µs/req', 'balancer CPU µs/req', 'credential', 'state/session'],
    results.map((r) => [
      r.mode,
      us(r.authUsPerRequest),
      r.serverTimingAuthUs === null ? '-' : `${us(r.serverTimingAuthUs.p50)} / ${us(r.serverTimingAuthUs.p99)}`,
      dec(r.storeCommandsPerRequest, 2),
      int(r.cpuUsPerRequest),
      r.balancerCpuUsPerRequest === null ? '-' : int(r.balancerCpuUsPerRequest),
      bytes(r.memoryCost.credentialBytes),
      r.mode === 'jwt' ? '0 B' : bytes(r.memoryCost.bytesPerSession)
    ]))
}

function perServerTable (results: ModeResult[]): string {
  const servers = [...new Set(results.flatMap((r) => Object.keys(r.perServer)))]
  return table(
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

function perServerCpuTable (results: ModeResult[]): string {
  const servers = [...new Set(results.flatMap((r) => Object.keys(r.perServer)))]
  return table(
    ['mode', ...servers],
    results.map((r) => [
      r.mode,
      ...servers.map((s) => {
        const p = r.perServer[s]
        return p === undefined ? '-' : `${int(p.cpuUsPerRequest)} µs (${dec(p.cpuCores, 2)} cores)`
      })
    ]))
}

function sweepTable (report: CompareReport): string {
  const points = report.sweep ?? []
  const modes = [...new Set(points.map((p) => p.mode))]
  const sizes = [...new Set(points.map((p) => p.servers))]
  return table(
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
  if (memory !== undefined) {
    const n = memory.servers
    lines.push(`memory: ${pct(memory.authFailureRate)} of logged-in requests were refused (401 unknown_session); a round-robin balancer predicts ${pct(memory.expectedAuthFailureRate)}, ` +
      `(N-1)/N with N = ${n}, because only the 1 server that took the login holds a given session.${n === 1 ? ' With one server nothing is refused: the problem starts at two.' : ''}`)
  }
  for (const r of [redis, jwt]) {
    if (r === undefined) continue
    lines.push(`${r.mode}: ${r.unauthorized === 0 ? 'no request was refused' : `${pct(r.authFailureRate)} of requests were refused (expected none)`}: every server can check every credential.`)
  }
  if (redis !== undefined) {
    const other = [jwt, memory].filter((r) => r !== undefined).map((r) => `${authText(r)} in ${r.mode}`)
    lines.push(`redis: the auth step made ${dec(redis.storeCommandsPerRequest, 2)} Redis commands per request and took ${authText(redis)}` +
      ` (${typicalAuthUs(redis).what}${other.length > 0 ? `; vs ${other.join(', ')}` : ''}): a network round trip on every request${report.config.redisLatencyMs > 0 ? `, here with ${report.config.redisLatencyMs} ms added by the delay proxy` : ''}.`)
  }
  if (jwt !== undefined) {
    const sessionId = memory?.memoryCost.credentialBytes ?? redis?.memoryCost.credentialBytes ?? null
    const token = jwt.memoryCost.credentialBytes
    lines.push(`jwt: no lookup and no server-side state${token === null ? '' : `, for a ${bytes(token)} token on every request${sessionId === null ? '' : ` instead of a ${bytes(sessionId)} session id`}`}; checking its HMAC and claims took ${authText(jwt)} (${typicalAuthUs(jwt).what}).`)
  }
  const stored = [memory, redis].filter((r) => r?.memoryCost.bytesPerSession != null) as ModeResult[]
  if (stored.length > 0) {
    lines.push(`state: ${stored.map((r) => `${r.mode} keeps ~${int(r.memoryCost.bytesPerSession as number)} bytes per session (${r.mode === 'memory' ? 'in one server\'s heap' : 'in Redis'})`).join('; ')}` +
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
  if (report.results.some((r) => r.bottleneck.balancerIsBottleneck)) {
    lines.push('balancer: in this run the balancer, not the app servers, set the pace (see the balancer check): read req/s and latency as a measurement of the balancer, and compare modes by the auth-step columns.')
  }
  return lines
}

export function formatReport (report: CompareReport): string {
  const c = report.config
  const out: string[] = []
  out.push(`Compared on ${c.target}; ${c.connections} connections (one session each), ${c.durationSeconds} s of load after ${c.warmupSeconds} s of warm-up` +
    `${c.runs > 1 ? `, ${c.runs} runs per mode (median, ±half the range)` : ''}.`)
  out.push('')
  out.push('Throughput and failures, as the client saw them through the balancer (refused = 401 / (2xx + 401)):')
  out.push(throughputTable(report.results))
  out.push('')
  out.push('Cost of the auth step, measured on the app servers (their /metrics and Server-Timing):')
  out.push(costTable(report.results))
  out.push('')
  out.push('Per server, from each server\'s own counters (2xx / 401):')
  out.push(perServerTable(report.results))
  const inFlight = report.results.filter((r) => r.serverCounted.ok + r.serverCounted.unauthorized > r.ok + r.unauthorized)
  if (inFlight.length > 0) {
    out.push('(the servers can count a few more than the client got: requests in flight when the load stopped, at most one per connection)')
  }
  out.push('')
  out.push('CPU per request each server answered, and the share of a core it used:')
  out.push(perServerCpuTable(report.results))
  if (report.sweep !== null) {
    out.push('')
    out.push('Sweep over cluster sizes (req/s and refused share; * = balancer-bound):')
    out.push(sweepTable(report))
  }
  out.push('')
  out.push('Balancer check (CPU in cores: 1.00 = one core flat out):')
  for (const r of report.results) {
    const b = r.bottleneck
    const cores = `balancer ${b.balancerCores === null ? '?' : dec(b.balancerCores, 2)}, app servers ${dec(b.serverCores, 2)}, load generator ${dec(b.loadGeneratorCores, 2)}, machine ${pct(b.machineBusy)} busy`
    out.push(`  ${r.mode.padEnd(7)} ${b.warnings.length === 0 ? 'ok' : 'WARNING'}: ${cores}`)
    for (const w of b.warnings) out.push(`          - ${w}`)
  }
  for (const note of report.notes) out.push(`Note: ${note}`)
  out.push('')
  out.push('In plain words:')
  for (const line of plainWords(report)) out.push(`  - ${line}`)
  return out.join('\n')
}
