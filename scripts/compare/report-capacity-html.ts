import type { TopLevelSpec } from 'vega-lite'
import type { CapacityStep } from './capacity-step.ts'
import type { CapacityReport } from './capacity.ts'
import { baseMode } from './mode-names.ts'
import { capacityPlainWords, capacitySections, stepVerdict } from './report-capacity-text.ts'
import { CHART_TEXT, COLOURS, type Chart } from './report-charts.ts'
import { escapeHtml, NUMBERS_CSS, PAGE_CSS, renderSvg, sectionHtml } from './report-html.ts'

// The capacity report (--slo-p99-ms) as one HTML page with no scripts: the latency-against-load
// chart rendered to SVG, then the same tables as the text report.

/**
 * The hockey sticks: p50 and p99 against the offered rate, one colour per mode, both axes log
 * (the steps are geometric, the latencies span milliseconds to seconds), the target as a rule.
 * A filled point held; a hollow one did not.
 */
export function latencyAgainstLoadChart (report: CapacityReport): Chart {
  const slo = report.config.sloP99Ms
  const modes = report.results.map((r) => r.mode)
  // A step measured again draws its second measurement only (the first is in the table).
  const counted = (steps: CapacityStep[]): CapacityStep[] => steps.filter((_, i) => steps[i + 1]?.repeated !== true)
  const values = report.results.flatMap((r) => counted(r.capacity.steps).flatMap((s) => (['p50', 'p99'] as const)
    .filter((p) => Number.isFinite(s.latencyMs[p]) && s.latencyMs[p] > 0)
    .map((p) => ({ mode: r.mode, percentile: p, offered: s.offeredRps, achieved: s.achievedRps, ms: s.latencyMs[p], held: s.held ? 'held' : 'did not hold', verdict: stepVerdict(s) }))))
  const colour = { field: 'mode', type: 'nominal', title: 'mode', scale: { domain: modes, range: modes.map((m) => COLOURS[baseMode(m)] ?? '#888888') } } as const
  const x = { field: 'offered', type: 'quantitative', title: 'offered load, req/s (log)', scale: { type: 'log', nice: false } } as const
  const y = { field: 'ms', type: 'quantitative', title: 'latency, ms (log)', scale: { type: 'log' } } as const
  const dash = { field: 'percentile', type: 'nominal', title: 'percentile', sort: ['p50', 'p99'], scale: { domain: ['p50', 'p99'], range: [[4, 3], [1, 0]] } } as const
  return {
    id: 'latency-against-load',
    title: 'Latency against offered load',
    caption: `p50 (dashed) and p99 (solid) at every step, from when each request was due; the grey line is the target, p99 ${slo} ms. A filled point held the target; a hollow one did not. Where a mode's p99 turns up is its knee.`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 640,
      height: 360,
      config: CHART_TEXT,
      layer: [
        {
          data: { values },
          layer: [
            { mark: { type: 'line' }, encoding: { x, y, color: colour, strokeDash: dash, detail: { field: 'percentile' } } },
            {
              mark: { type: 'point', size: 60 },
              encoding: {
                x,
                y,
                color: colour,
                fill: { condition: { test: "datum.held === 'held'", field: 'mode', type: 'nominal', scale: colour.scale, title: 'mode' }, value: 'white' },
                opacity: { value: 1 },
                tooltip: [{ field: 'mode' }, { field: 'percentile' }, { field: 'offered', format: ',.0f' }, { field: 'achieved', format: ',.0f' }, { field: 'ms', format: '.2f' }, { field: 'verdict' }]
              }
            }
          ]
        },
        {
          data: { values: [{ slo, label: `target: p99 ${slo} ms` }] },
          layer: [
            { mark: { type: 'rule', color: '#666', strokeWidth: 2 }, encoding: { y: { field: 'slo', type: 'quantitative' } } },
            { mark: { type: 'text', align: 'left', dx: 4, dy: -8, color: '#444' }, encoding: { y: { field: 'slo', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } } }
          ]
        }
      ]
    } as TopLevelSpec
  }
}

export async function renderCapacityHtml (report: CapacityReport): Promise<string> {
  const c = report.config
  const chart = latencyAgainstLoadChart(report)
  const saturated = report.results.flatMap((r) => {
    const behind = r.capacity.steps.filter((s) => s.generatorBehind)
    return behind.length === 0
      ? []
      : [`${r.mode}: the load generator ran behind its schedule in ${behind.length} of ${r.capacity.steps.length} steps (send lag p99 up to ${Math.max(...behind.map((s) => s.sendLagP99Ms)).toFixed(1)} ms): their latencies include the machine's delay`]
  })
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>auth-cluster: capacity per mode at p99 ${c.sloP99Ms} ms</title>
<style>
${PAGE_CSS}
  figure.chart { margin: 0; padding: 0.8rem; border: 1px solid #ddd; border-radius: 6px; background: #fff; display: inline-block; }
  figure.chart h3 { margin: 0; font-size: 1.1rem; }
  figure.chart p { margin: 0.2rem 0 0.6rem; color: #555; font-size: 0.9rem; max-width: 44rem; }
${NUMBERS_CSS}
</style>
</head>
<body>
<h1>Capacity at a latency target: p99 at most ${c.sloP99Ms} ms</h1>
<p class="meta">${escapeHtml(c.target)}; ${c.connections} connections, one session each. An open model: requests on a fixed schedule, each one's latency counted from when it was due. ${c.firstWarmupSeconds ?? 0} s of load on each fresh cluster first, then steps of ${c.durationSeconds} s after ${c.stepWarmupSeconds} s at the same rate; a step that fails is measured once more, and the second verdict counts. Started ${escapeHtml(c.startedAt)}, ${c.machine.cores} cores, load average ${c.machine.loadAverageAtStart.toFixed(1)} at the start.</p>
${saturated.length > 0 ? `<div class="warning"><strong>Read with care (the machine was saturated):</strong><ul>${saturated.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul></div>` : ''}
<h2>In plain words</h2>
<ul>${capacityPlainWords(report).map((l) => `<li>${escapeHtml(l)}</li>`).join('\n')}</ul>
<h2>Latency against load</h2>
<figure class="chart" id="chart-${chart.id}" data-chart="${chart.id}">
<figcaption><h3>${escapeHtml(chart.title)}</h3><p>${escapeHtml(chart.caption)}</p></figcaption>
${await renderSvg(chart.spec)}
</figure>
<h2>The numbers</h2>
<div id="numbers">
${capacitySections(report).map(sectionHtml).join('\n')}
${report.notes.length > 0 ? `<ul>${report.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
</div>
</body>
</html>
`
}
