import type { CapacityStep } from './capacity-step.ts'
import type { CapacityReport, CapacityResult, LimitedBy } from './capacity.ts'
import { dec, int, pct, table, us } from './report-format.ts'
import type { ReportSection } from './report-text.ts'

// The report of `npm run compare -- --slo-p99-ms MS` (capacity.ts), as text; report-capacity-html.ts
// lays the same sections out as tables beside the latency-against-load chart.

const orDash = (n: number | null, format: (n: number) => string): string => n === null ? '-' : format(n)

const LIMIT_WORDS: Record<LimitedBy, string> = {
  target: 'the target',
  'load-generator': 'the machine (load generator behind)',
  'max-rps': '--max-rps (raise it)',
  'start-rps': 'nothing held (lower --start-rps)'
}

/** "held", or why not; with the flags that make a number less than it looks. */
export function stepVerdict (s: CapacityStep): string {
  // "not reached" is among the reasons already (and in the reached column).
  const flags = [
    ...(s.generatorBehind ? [`SATURATED: generator behind (lag p99 ${dec(s.sendLagP99Ms, 1)} ms)`] : []),
    ...(s.repeated === true ? ['measured again after the line above'] : [])
  ]
  return [s.held ? 'held' : `no: ${s.why.join('; ')}`, ...flags].join('; ')
}

function capacityTable (results: CapacityResult[]): ReportSection['table'] {
  const rows = results.map((r) => {
    const c = r.capacity
    const at = c.steps.find((s) => s.held && s.offeredRps === c.heldRps)
    return [
      r.mode,
      orDash(c.heldRps, int),
      orDash(c.failedRps, int),
      LIMIT_WORDS[c.limitedBy],
      at === undefined ? '-' : `${int(at.achievedRps)}${at.reached ? '' : ' (not reached)'}`,
      at === undefined ? '-' : dec(at.latencyMs.p50, 2),
      at === undefined ? '-' : dec(at.latencyMs.p99, 1),
      orDash(c.cpuUsPerRequest.servers, us),
      orDash(c.cpuUsPerRequest.balancer, us),
      orDash(c.cpuUsPerRequest.store, us),
      orDash(c.cpuUsPerRequest.total, us),
      orDash(c.rpsPerServerCore, int)
    ]
  })
  return {
    header: ['mode', 'held req/s', 'failed at', 'limited by', 'answered/s', 'p50 ms', 'p99 ms', 'CPU µs/req servers', 'balancer', 'store', 'total', 'req/s per server core'],
    rows,
    leftColumns: 1
  }
}

function stepsTable (results: CapacityResult[]): ReportSection['table'] {
  const rows = results.flatMap((r) => r.capacity.steps.map((s) => [
    r.mode,
    s.phase,
    int(s.offeredRps),
    int(s.achievedRps),
    s.reached ? 'yes' : 'NO',
    dec(s.latencyMs.p50, 2),
    dec(s.latencyMs.p99, 1),
    dec(s.serviceMs.p99, 1),
    int(s.errors),
    pct(s.authFailureRate),
    orDash(s.cpu.serversUsPerRequest, us),
    orDash(s.cpu.generatorCores, (n) => dec(n, 2)),
    `${Math.round(s.cpu.machineBusy * 100)}%`,
    stepVerdict(s)
  ]))
  return {
    header: ['mode', 'step', 'offered/s', 'answered/s', 'reached', 'p50 ms', 'p99 ms', 'p99 from send', 'failed', 'refused', 'servers µs/req', 'generator cores', 'machine', 'verdict'],
    rows,
    leftColumns: 2
  }
}

export function capacitySections (report: CapacityReport): ReportSection[] {
  const c = report.config
  return [
    {
      id: 'capacity',
      title: `Capacity at p99 <= ${c.sloP99Ms} ms: the highest offered rate that held, and what it cost there:`,
      table: capacityTable(report.results),
      notes: [
        '(CPU µs per request answered at that rate: app servers together, balancer, store (-: none, or not seen); total = their sum. req/s per server core = 1,000,000 / the servers\' µs per request.)'
      ]
    },
    {
      id: 'capacity-steps',
      title: 'Every step, in the order measured (latency from when each request was due; "p99 from send" is what a closed loop would report):',
      table: stepsTable(report.results),
      notes: [`(${c.rule}. A rate is reached when answered/s is within 3% of offered/s. SATURATED: the load generator ran behind its own schedule, so that step measured the machine as much as the mode.)`]
    }
  ]
}

export function capacityPlainWords (report: CapacityReport): string[] {
  const c = report.config
  const lines: string[] = []
  for (const r of report.results) {
    const k = r.capacity
    if (k.heldRps === null) {
      const lowest = k.steps[k.steps.length - 1]
      lines.push(`${r.mode}: not even ${int(lowest?.offeredRps ?? c.startRps)} req/s held p99 <= ${c.sloP99Ms} ms (${lowest?.why.join('; ') ?? ''})` +
        (k.limitedBy === 'load-generator' ? '; the load generator was behind its schedule, so this machine was too busy to tell (run it on a quieter one).' : '; try a lower --start-rps.'))
      continue
    }
    const perCore = k.rpsPerServerCore === null ? '' : `; one app-server core answers about ${int(k.rpsPerServerCore)} req/s of it`
    const ceiling = k.limitedBy === 'max-rps'
      ? ` and never broke the target up to --max-rps ${int(c.maxRps)}`
      : k.limitedBy === 'load-generator'
        ? `; at ${int(k.failedRps ?? Number.NaN)} req/s the load generator fell behind, so the limit found is this machine's, not the mode's`
        : `; ${int(k.failedRps ?? Number.NaN)} req/s did not (${k.steps.find((s) => s.offeredRps === k.failedRps)?.why.join('; ') ?? ''})`
    lines.push(`${r.mode}: holds ${int(k.heldRps)} req/s at p99 <= ${c.sloP99Ms} ms${ceiling}${perCore}.`)
  }
  return lines
}

/** A table whose last column is words: laid out after the columns, left-aligned, instead of padded. */
function lastColumnAsText (data: ReportSection['table']): string {
  const last = data.header.length - 1
  const lines = table(data.header.slice(0, last), data.rows.map((r) => r.slice(0, last)), data.leftColumns).split('\n')
  const words = [data.header[last] ?? '', '-'.repeat((data.header[last] ?? '').length), ...data.rows.map((r) => r[last] ?? '')]
  const width = Math.max(...lines.map((l) => l.length))
  return lines.map((l, i) => `${l.padEnd(width)}  ${words[i] ?? ''}`.trimEnd()).join('\n')
}

export function formatCapacityReport (report: CapacityReport): string {
  const c = report.config
  const out: string[] = []
  out.push(`Capacity at a latency target, on ${c.target}; ${c.connections} connections (one session each). An open model: requests on a fixed schedule, ` +
    `each one's latency counted from when it was due. ${c.firstWarmupSeconds ?? 0} s of load on each fresh cluster first, then steps of ${c.durationSeconds} s after ${c.stepWarmupSeconds} s at the same rate, from ${int(c.startRps)} req/s ×${c.growth} ` +
    `to at most ${int(c.maxRps)} (or down by half, three times at most, when the first fails), then ${c.refineSteps} bisections; a step that fails is measured once more, and the second verdict counts. The machine: ${c.machine.cores} cores, load average ${dec(c.machine.loadAverageAtStart, 1)} at the start.`)
  for (const s of capacitySections(report)) {
    out.push('', s.title, s.id === 'capacity-steps' ? lastColumnAsText(s.table) : table(s.table.header, s.table.rows, s.table.leftColumns), ...s.notes)
  }
  if (report.notes.length > 0) out.push('', 'Notes:', ...report.notes.map((n) => `  - ${n}`))
  out.push('', 'In plain words:', ...capacityPlainWords(report).map((l) => `  - ${l}`))
  return out.join('\n')
}
