// `npm run bench:balancer`'s report as text: the table of legs, then the ratios of ours to each.
import type { BenchReport, Ratio } from './bench-balancer.ts'

/** The result as a plain-text table with the ratios under it. */
export function formatReport (report: BenchReport): string {
  const { config } = report
  const lines: string[] = []
  lines.push(`GET ${config.path}, ${config.connections} connections, ${config.rounds} round${config.rounds === 1 ? '' : 's'} of ${config.durationSeconds} s per leg (interleaved), medians; ${config.upstreams} app server${config.upstreams === 1 ? '' : 's'}, ${report.machine.cpus} CPUs, Node ${report.machine.node}`)
  lines.push('')
  const head = ['leg', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'proxy CPU µs/req', 'what']
  const rows: string[][] = report.legs.map((leg) => {
    if (leg.median === null) return [leg.label, '-', '-', '-', '-', '-', '-', `skipped: ${leg.skipped ?? 'no result'}`]
    const m = leg.median
    return [
      leg.label,
      m.rps.toLocaleString('en-US'),
      m.latencyMs.p50.toFixed(2),
      m.latencyMs.p90.toFixed(2),
      m.latencyMs.p99.toFixed(2),
      String(leg.errors + leg.non2xx),
      m.proxyCpuUsPerRequest === null ? '-' : m.proxyCpuUsPerRequest.toFixed(1),
      leg.description
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  const fmt = (cells: string[]): string => cells.map((c, i) => {
    const w = widths[i] as number
    if (i === cells.length - 1) return c
    return i === 0 ? c.padEnd(w) : c.padStart(w)
  }).join('  ')
  lines.push(fmt(head), fmt(widths.map((w, i) => '-'.repeat(i === widths.length - 1 ? 4 : w))), ...rows.map(fmt))
  lines.push('')
  const describe = (label: string, r: Ratio | null, other: string): string => r === null
    ? `${label}: - (no ${other} leg in this run)`
    : `${label}: throughput ${r.rps.toFixed(2)} (rounds ${r.rpsRange[0].toFixed(2)}-${r.rpsRange[1].toFixed(2)}), p99 ${r.p99.toFixed(2)}x (rounds ${r.p99Range[0].toFixed(2)}-${r.p99Range[1].toFixed(2)}), p50 ${r.p50.toFixed(2)}x`
  lines.push(describe('ours / nginx    ', report.ratios.oursToNginx, 'nginx'))
  lines.push(describe('ours / haproxy  ', report.ratios.oursToHaproxy, 'haproxy'))
  lines.push(describe('ours / direct   ', report.ratios.oursToDirect, 'direct'))
  lines.push(describe('ours / node-http', report.ratios.oursToNodeHttp, 'node-http'))
  lines.push(describe('ours / undici   ', report.ratios.oursToUndici, 'undici'))
  for (const t of report.threaded) {
    const x = `x${t.threads}`
    lines.push(describe(`ours ${x} / nginx ${x}`.padEnd(24), t.oursToNginx, `nginx ${x}`))
    lines.push(describe(`ours ${x} / haproxy ${x}`.padEnd(24), t.oursToHaproxy, `haproxy ${x}`))
    lines.push(describe(`ours ${x} / ours`.padEnd(24), t.oursScaling, 'one-thread ours'))
    lines.push(describe(`nginx ${x} / nginx`.padEnd(24), t.nginxScaling, 'one-worker nginx'))
    lines.push(describe(`haproxy ${x} / haproxy`.padEnd(24), t.haproxyScaling, 'one-thread haproxy'))
  }
  const t = report.target
  lines.push(`target, ours against nginx: throughput >= ${t.rpsAtLeast} and p99 <= ${t.p99AtMost}x: ${t.met === null ? 'not measured (no nginx leg)' : t.met ? 'met' : 'NOT met'}`)
  return lines.join('\n')
}
