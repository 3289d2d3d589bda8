import { parse, View } from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { COMPARE_MODES, usesRedis } from './modes.ts'
import { plainWords, reportSections, typicalAuthUs, type ReportSection } from './report-text.ts'
import type { CompareReport, ModeResult } from './run-compare.ts'

/**
 * The report as one HTML page with no scripts and no requests: every chart is a Vega-Lite spec
 * rendered to SVG here, in Node (vega's headless renderer needs no canvas for SVG), and inlined.
 */

export interface Chart { id: string, title: string, caption: string, spec: TopLevelSpec }

// Each mode keeps its colour in every chart, whichever modes ran.
const COLOURS: Record<string, string> = { memory: '#e45756', redis: '#4c78a8', jwt: '#54a24b', 'jwt-revocation': '#b279a2' }
// Text sized to sit beside the dashboard's (15 px and up): Vega-Lite's defaults (10-11 px) read
// as footnotes on a projector.
const CHART_TEXT = {
  font: 'system-ui, sans-serif',
  axis: { labelFontSize: 14, titleFontSize: 15, titleFontWeight: 'normal' },
  legend: { labelFontSize: 14, titleFontSize: 15 },
  header: { labelFontSize: 15, titleFontSize: 15 },
  text: { fontSize: 14 },
  title: { fontSize: 16 }
} as const
const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 440, height: 240, config: CHART_TEXT } as const

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
      // Room for each server's name at the charts' text size, side by side.
      width: Math.max(150, 56 * Math.max(1, ...results.map((r) => Object.keys(r.perServer).length))),
      height: 220
    } as TopLevelSpec
  })

  charts.push(authStepChart(report, modeAxis, modeColour))

  charts.push({
    id: 'request-cost',
    title: 'Redis commands and server CPU, per request',
    caption: 'Measured on the app servers: Redis commands per request (session_store_commands_total) and the servers\' CPU per request (process_cpu_seconds_total), the whole request and not only its auth step.',
    spec: {
      $schema: base.$schema,
      config: base.config,
      data: {
        // Redis commands only when a mode that uses Redis ran: a panel of zeros says nothing.
        values: results.flatMap((r) => [
          ...(modes.some(usesRedis) ? [{ mode: r.mode, measure: 'Redis commands per request', value: r.storeCommandsPerRequest }] : []),
          { mode: r.mode, measure: 'server CPU, µs per request', value: r.cpuUsPerRequest }
        ])
      },
      facet: { column: { field: 'measure', type: 'nominal', title: null } },
      spec: {
        width: 320,
        height: 220,
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
          width: 320,
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

/** Server-Timing counts whole microseconds: a median under half of one is drawn at half, and labelled as below one. */
const BELOW_RESOLUTION_US = 0.5

/**
 * The auth step per mode on a log scale: from a Map lookup (about 1 µs) to a Redis round trip
 * under load (hundreds), a linear axis leaves memory's and jwt's bars a pixel high or none. The
 * axis starts a decade below the smallest value, so every bar is at least a decade tall, and
 * each bar carries its number.
 */
function authStepChart (report: CompareReport, modeAxis: object, modeColour: object): Chart {
  const rows = report.results.map((r) => {
    const { us, what } = typicalAuthUs(r)
    const shown = Math.max(us, BELOW_RESOLUTION_US)
    return { mode: r.mode, us: shown, what, label: us < BELOW_RESOLUTION_US ? '< 1 µs' : `${us < 100 ? Number(us.toFixed(1)) : Math.round(us).toLocaleString('en-US')} µs` }
  })
  const values = rows.map((r) => r.us)
  const bottom = 10 ** (Math.floor(Math.log10(Math.min(...values, 1))) - 1)
  const top = 10 ** Math.ceil(Math.log10(Math.max(...values, 10) * 1.5))
  // "median" or "mean": the caption says itself that it was under load.
  const what = [...new Set(rows.map((r) => r.what.replace(' under load', '')))].join(' or ')
  return {
    id: 'auth-cost',
    title: 'The auth step, per request',
    caption: `The time a request spends in the auth step, on the app servers: the ${what} of every response's Server-Timing, under the run's load (${report.config.connections} connections, after the warm-up; the mean, from auth_duration_seconds, is in the numbers below). On a log scale: each gridline is ten times the one below, so a Map lookup, an HMAC and a Redis round trip all show.`,
    spec: {
      ...base,
      data: { values: rows },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x: modeAxis,
            y: { field: 'us', type: 'quantitative', title: 'µs (log scale)', scale: { type: 'log', domain: [bottom, top], nice: false }, axis: { format: '~g', tickCount: Math.round(Math.log10(top / bottom)) } },
            y2: { datum: bottom },
            color: modeColour
          }
        },
        { mark: { type: 'text', dy: -5, baseline: 'bottom', fontWeight: 'bold' }, encoding: { x: modeAxis, y: { field: 'us', type: 'quantitative' }, text: { field: 'label' } } }
      ]
    } as TopLevelSpec
  }
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

/** One section of the numbers as an HTML table: names left, numbers right, as in the text report. */
function sectionHtml (section: ReportSection): string {
  const { header, rows, leftColumns } = section.table
  const cell = (tag: 'th' | 'td', text: string, i: number): string => `<${tag}${i < leftColumns ? '' : ' class="number"'}>${escapeHtml(text)}</${tag}>`
  return `<section class="numbers-section" id="numbers-${section.id}">
<h3>${escapeHtml(section.title.replace(/:$/, ''))}</h3>
<table>
<thead><tr>${header.map((h, i) => cell('th', h, i)).join('')}</tr></thead>
<tbody>
${rows.map((row) => `<tr>${row.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n')}
</tbody>
</table>
${section.notes.map((note) => `<p class="note">${escapeHtml(note)}</p>`).join('\n')}
</section>`
}

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
  figure.chart h3 { margin: 0; font-size: 1.1rem; }
  figure.chart p { margin: 0.2rem 0 0.6rem; color: #555; font-size: 0.9rem; max-width: 40rem; }
  .warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5rem 0.8rem; }
  #numbers table { border-collapse: collapse; font-size: 14px; margin: 0.3rem 0 0.4rem; max-width: 100%; }
  #numbers th, #numbers td { padding: 0.2rem 0.5rem; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; overflow-wrap: break-word; }
  #numbers th { background: #f6f6f6; font-weight: 600; }
  #numbers .number { text-align: right; font-variant-numeric: tabular-nums; }
  #numbers h3 { font-size: 1rem; font-weight: 600; margin: 1.2rem 0 0.2rem; }
  #numbers .note { color: #555; font-size: 0.85rem; margin: 0.2rem 0; }
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
<div id="numbers">
${reportSections(report).map(sectionHtml).join('\n')}
</div>
</body>
</html>
`
}
