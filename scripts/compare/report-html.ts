import { parse, View } from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { COMPARE_MODES, usesRedis } from './modes.ts'
import { formatReport, plainWords, typicalAuthUs } from './report-text.ts'
import type { CompareReport, ModeResult } from './run-compare.ts'

/**
 * The report as one HTML page with no scripts and no requests: every chart is a Vega-Lite spec
 * rendered to SVG here, in Node (vega's headless renderer needs no canvas for SVG), and inlined.
 */

export interface Chart { id: string, title: string, caption: string, spec: TopLevelSpec }

// Each mode keeps its colour in every chart, whichever modes ran.
const COLOURS: Record<string, string> = { memory: '#e45756', redis: '#4c78a8', jwt: '#54a24b', 'jwt-revocation': '#b279a2' }
const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 360, height: 220, config: { font: 'system-ui, sans-serif' } } as const

export function buildCharts (report: CompareReport): Chart[] {
  const results = report.results
  const charts: Chart[] = []
  const modes = COMPARE_MODES.filter((m) => results.some((r) => r.mode === m) || (report.sweep ?? []).some((p) => p.mode === m))
  const MODE_COLOURS = { domain: [...modes], range: modes.map((m) => COLOURS[m] as string) }
  const modeColour = { field: 'mode', type: 'nominal', title: 'mode', scale: MODE_COLOURS } as const
  const modeAxis = { field: 'mode', type: 'nominal', title: null, sort: modes, axis: { labelAngle: 0 } } as const

  charts.push({
    id: 'throughput',
    title: 'Throughput',
    caption: `Requests per second through the balancer, ${report.config.connections} connections${report.config.runs > 1 ? '; the whisker spans the runs (min to max)' : ''}.`,
    spec: {
      ...base,
      data: { values: results.map((r) => ({ mode: r.mode, rps: r.rps, min: r.spread.rps.min, max: r.spread.rps.max })) },
      layer: [
        { mark: { type: 'bar' }, encoding: { x: modeAxis, y: { field: 'rps', type: 'quantitative', title: 'req/s' }, color: modeColour } },
        { mark: { type: 'rule', strokeWidth: 2 }, encoding: { x: modeAxis, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
        { mark: { type: 'text', dy: -6, baseline: 'bottom' }, encoding: { x: modeAxis, y: { field: 'rps', type: 'quantitative' }, text: { field: 'rps', type: 'quantitative', format: ',.0f' } } }
      ]
    } as TopLevelSpec
  })

  charts.push({
    id: 'latency',
    title: 'Latency percentiles',
    caption: 'Client-side latency of every response (2xx and 401), milliseconds.',
    spec: {
      ...base,
      data: { values: results.flatMap((r) => (['p50', 'p90', 'p99'] as const).map((p) => ({ mode: r.mode, percentile: p, ms: r.latencyMs[p] }))) },
      mark: { type: 'bar' },
      encoding: {
        x: modeAxis,
        xOffset: { field: 'percentile', type: 'nominal', sort: ['p50', 'p90', 'p99'] },
        y: { field: 'ms', type: 'quantitative', title: 'ms' },
        color: { field: 'percentile', type: 'nominal', title: 'percentile', sort: ['p50', 'p90', 'p99'], scale: { scheme: 'blues' } }
      }
    } as TopLevelSpec
  })

  charts.push({
    id: 'failure-rate',
    title: 'Logged-in requests refused',
    caption: '401 / (2xx + 401) per mode; the black tick is what a round-robin balancer predicts: (N-1)/N for memory, 0 otherwise.',
    spec: {
      ...base,
      data: { values: results.map((r) => ({ mode: r.mode, rate: r.authFailureRate, expected: r.expectedAuthFailureRate })) },
      layer: [
        { mark: { type: 'bar' }, encoding: { x: modeAxis, y: { field: 'rate', type: 'quantitative', title: 'refused', axis: { format: '.0%' }, scale: { domain: [0, 1] } }, color: modeColour } },
        { mark: { type: 'tick', color: 'black', thickness: 2, size: 50 }, encoding: { x: modeAxis, y: { field: 'expected', type: 'quantitative' } } },
        { mark: { type: 'text', dy: -6, baseline: 'bottom' }, encoding: { x: modeAxis, y: { field: 'rate', type: 'quantitative' }, text: { field: 'rate', type: 'quantitative', format: '.1%' } } }
      ]
    } as TopLevelSpec
  })

  charts.push({
    id: 'per-server',
    title: 'Per server: answered and refused',
    caption: 'Each app server\'s own counters (auth_outcomes_total) for the measured run: 2xx let through, 401 refused.',
    spec: {
      $schema: base.$schema,
      config: base.config,
      data: { values: results.flatMap(perServerRows) },
      mark: { type: 'bar' },
      encoding: {
        column: { field: 'mode', type: 'nominal', title: null, sort: MODE_COLOURS.domain },
        x: { field: 'server', type: 'nominal', title: null, axis: { labelAngle: 0 } },
        y: { field: 'count', type: 'quantitative', title: 'requests', stack: 'zero' },
        color: { field: 'outcome', type: 'nominal', title: 'outcome', scale: { domain: ['2xx', '401'], range: ['#54a24b', '#e45756'] } },
        order: { field: 'order', type: 'quantitative' }
      },
      width: Math.max(120, 40 * Math.max(1, ...results.map((r) => Object.keys(r.perServer).length))),
      height: 220
    } as TopLevelSpec
  })

  charts.push({
    id: 'auth-cost',
    title: 'Cost of the auth step',
    caption: 'Measured on the app servers: the time a request spends in the auth step (the median of the Server-Timing values; the mean, from auth_duration_seconds, is in the table below), Redis commands per request (session_store_commands_total), and the servers\' CPU per request (process_cpu_seconds_total).',
    spec: {
      $schema: base.$schema,
      config: base.config,
      data: {
        // Redis commands only when a mode that uses Redis ran: a panel of zeros says nothing.
        values: results.flatMap((r) => [
          { mode: r.mode, measure: `auth step, µs (${typicalAuthUs(r).what})`, value: typicalAuthUs(r).us },
          ...(modes.some(usesRedis) ? [{ mode: r.mode, measure: 'Redis commands per request', value: r.storeCommandsPerRequest }] : []),
          { mode: r.mode, measure: 'server CPU, µs per request', value: r.cpuUsPerRequest }
        ])
      },
      facet: { column: { field: 'measure', type: 'nominal', title: null } },
      spec: {
        width: 200,
        height: 200,
        layer: [
          { mark: { type: 'bar' }, encoding: { x: modeAxis, y: { field: 'value', type: 'quantitative', title: null }, color: modeColour } },
          { mark: { type: 'text', dy: -4, baseline: 'bottom' }, encoding: { x: modeAxis, y: { field: 'value', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: ',.2~f' } } }
        ]
      },
      resolve: { scale: { y: 'independent' } }
    } as TopLevelSpec
  })

  // jwt with two keys: the auth step for the tokens of each, side by side.
  const kidRows = results.flatMap((r) => Object.keys(r.byKid ?? {}).length < 2
    ? []
    : Object.entries(r.byKid ?? {}).flatMap(([kid, k]) => k.authUs === null
      ? []
      : [{ mode: r.mode, kid: `${kid}${kid === r.keyRotation?.kids.newer ? ' (signs)' : kid === r.keyRotation?.kids.older ? ' (accepted)' : ''}`, us: k.authUs.p50, connections: k.connections, ok: k.ok, refused: k.unauthorized }]))
  if (kidRows.length > 0) {
    // Said from what was measured, not assumed: how each key's tokens fared.
    const fared = kidRows.map((k) => `${k.mode} ${k.kid}: ${k.ok.toLocaleString('en-US')} accepted, ${k.refused.toLocaleString('en-US')} refused`).join('; ')
    const x = { field: 'mode', type: 'nominal', title: null, axis: { labelAngle: 0 } } as const
    charts.push({
      id: 'key-rotation',
      title: 'The auth step, by signing key',
      caption: `jwt servers holding two keys in JWT_SECRETS, as in the middle of a rotation: the median auth step (Server-Timing) for the connections whose tokens each key signed. ${fared}.`,
      spec: {
        ...base,
        data: { values: kidRows },
        encoding: { x, xOffset: { field: 'kid', type: 'nominal' } },
        layer: [
          {
            mark: { type: 'bar' },
            encoding: {
              y: { field: 'us', type: 'quantitative', title: 'auth step, µs (median)' },
              color: { field: 'kid', type: 'nominal', title: 'key', scale: { scheme: 'greens' } }
            }
          },
          { mark: { type: 'text', dy: -4, baseline: 'bottom' }, encoding: { y: { field: 'us', type: 'quantitative' }, text: { field: 'us', type: 'quantitative', format: ',.1f' } } }
        ]
      } as TopLevelSpec
    })
  }

  // Only what was measured: jwt's 0 bytes of state counts only beside a measured session store.
  const stateMeasured = results.some((r) => !r.mode.startsWith('jwt') && r.memoryCost.bytesPerSession !== null)
  const memoryRows = results.flatMap((r) => [
    ...(stateMeasured && r.memoryCost.bytesPerSession !== null ? [{ mode: r.mode, measure: 'server-side state per session, bytes', value: r.memoryCost.bytesPerSession }] : []),
    ...(r.memoryCost.credentialBytes !== null ? [{ mode: r.mode, measure: 'credential sent on every request, bytes', value: r.memoryCost.credentialBytes }] : [])
  ])
  if (memoryRows.some((row) => row.value > 0)) {
    charts.push({
      id: 'memory-cost',
      title: 'Memory per session, and the credential\'s size',
      caption: 'Server-side bytes per session (memory: one server\'s heap; redis: Redis used_memory; jwt: none; jwt-revocation: none per live session, a jti per logout), and the bytes of the credential a client sends.',
      spec: {
        $schema: base.$schema,
        config: base.config,
        data: { values: memoryRows },
        facet: { column: { field: 'measure', type: 'nominal', title: null } },
        spec: {
          width: 220,
          height: 200,
          layer: [
            { mark: { type: 'bar' }, encoding: { x: modeAxis, y: { field: 'value', type: 'quantitative', title: 'bytes' }, color: modeColour } },
            { mark: { type: 'text', dy: -4, baseline: 'bottom' }, encoding: { x: modeAxis, y: { field: 'value', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: ',.0f' } } }
          ]
        },
        resolve: { scale: { y: 'independent' } }
      } as TopLevelSpec
    })
  }

  if (report.sweep !== null && report.sweep.length > 0) {
    const sweep = report.sweep
    charts.push({
      id: 'sweep-throughput',
      title: 'Throughput by cluster size',
      caption: 'Requests per second through the balancer for each number of app servers.',
      spec: {
        ...base,
        data: { values: sweep },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'servers', type: 'quantitative', title: 'app servers', axis: { tickMinStep: 1, format: 'd' } },
          y: { field: 'rps', type: 'quantitative', title: 'req/s' },
          color: modeColour
        }
      } as TopLevelSpec
    })
    const sizes = [...new Set(sweep.map((p) => p.servers))]
    charts.push({
      id: 'sweep-failure',
      title: 'Refused share by cluster size',
      caption: 'Measured share of logged-in requests refused; the dashed line is (N-1)/N, what memory sessions behind a round-robin balancer predict.',
      spec: {
        ...base,
        layer: [
          {
            data: { values: sizes.map((n) => ({ servers: n, expected: (n - 1) / n })) },
            mark: { type: 'line', strokeDash: [4, 4], color: 'black' },
            encoding: {
              x: { field: 'servers', type: 'quantitative', title: 'app servers', axis: { tickMinStep: 1, format: 'd' } },
              y: { field: 'expected', type: 'quantitative' }
            }
          },
          {
            data: { values: sweep },
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'servers', type: 'quantitative' },
              y: { field: 'authFailureRate', type: 'quantitative', title: 'refused', axis: { format: '.0%' }, scale: { domain: [0, 1] } },
              color: modeColour
            }
          }
        ]
      } as TopLevelSpec
    })
  }
  return charts
}

function perServerRows (r: ModeResult): Array<{ mode: string, server: string, outcome: string, count: number, order: number }> {
  return Object.entries(r.perServer).flatMap(([server, p]) => [
    { mode: r.mode, server, outcome: '2xx', count: p.ok, order: 0 },
    { mode: r.mode, server, outcome: '401', count: p.unauthorized, order: 1 }
  ])
}

export async function renderSvg (spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

export async function renderHtmlReport (report: CompareReport): Promise<string> {
  const charts = buildCharts(report)
  const figures: string[] = []
  for (const chart of charts) {
    figures.push(`<figure class="chart" id="chart-${chart.id}" data-chart="${chart.id}">
<figcaption><h3>${escapeHtml(chart.title)}</h3><p>${escapeHtml(chart.caption)}</p></figcaption>
${await renderSvg(chart.spec)}
</figure>`)
  }
  const warnings = report.results.flatMap((r) => r.bottleneck.warnings.map((w) => `${r.mode}: ${w}`))
  const c = report.config
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>auth-cluster: memory vs redis vs jwt (and jwt with revocation) under load</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
  .meta { color: #555; margin-top: 0; }
  .charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
  figure.chart { margin: 0; padding: 0.8rem; border: 1px solid #ddd; border-radius: 6px; background: #fff; }
  figure.chart h3 { margin: 0; font-size: 1rem; }
  figure.chart p { margin: 0.2rem 0 0.6rem; color: #555; font-size: 0.85rem; max-width: 40rem; }
  .warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5rem 0.8rem; }
  pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 12.5px; line-height: 1.35; }
  ul.summary li { margin-bottom: 0.3rem; }
</style>
</head>
<body>
<h1>Sessions in memory, sessions in Redis, and JWTs, under load</h1>
<p class="meta">${escapeHtml(c.target)}; ${c.connections} connections, one session each; ${c.durationSeconds} s of load after ${c.warmupSeconds} s of warm-up${c.runs > 1 ? `; median of ${c.runs} runs` : ''}. Started ${escapeHtml(c.startedAt)}, ${c.machine.cores} cores, load average ${c.machine.loadAverageAtStart.toFixed(1)} at the start.</p>
${warnings.length > 0 ? `<div class="warning"><strong>Read with care:</strong><ul>${warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul></div>` : ''}
<h2>In plain words</h2>
<ul class="summary">${plainWords(report).map((l) => `<li>${escapeHtml(l)}</li>`).join('\n')}</ul>
<h2>Charts</h2>
<div class="charts">
${figures.join('\n')}
</div>
<h2>The numbers</h2>
<pre>${escapeHtml(formatReport(report))}</pre>
</body>
</html>
`
}
