import type { TopLevelSpec } from 'vega-lite'
import { baseMode } from './mode-names.ts'
import { COMPARE_MODES, storeOf } from './modes.ts'
import { typicalAuthUs } from './report-text.ts'
import type { CompareReport, ModeResult } from './run-compare.ts'
import type { Interval } from './stats.ts'

// The report's charts, as Vega-Lite specs: report-html.ts renders them to SVG.

export interface Chart { id: string, title: string, caption: string, spec: TopLevelSpec }

// Each mode keeps its colour in every chart, whichever modes ran (the capacity report's too).
export const COLOURS: Record<string, string> = {
  memory: '#e45756',
  redis: '#4c78a8',
  postgres: '#f58518',
  jwt: '#54a24b',
  'jwt-revocation': '#b279a2',
  cookie: '#9d755d',
  'postgres+redis-cache': '#ffbf79',
  'postgres+local-cache': '#eeca3b',
  'jwt-eddsa': '#88d27a'
}
// Text sized to sit beside the dashboard's (15 px and up): Vega-Lite's defaults (10-11 px) read
// as footnotes on a projector.
export const CHART_TEXT = {
  font: 'system-ui, sans-serif',
  axis: { labelFontSize: 14, titleFontSize: 15, titleFontWeight: 'normal' },
  legend: { labelFontSize: 14, titleFontSize: 15 },
  header: { labelFontSize: 15, titleFontSize: 15 },
  text: { fontSize: 14 },
  title: { fontSize: 16 }
} as const
const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 440, height: 240, config: CHART_TEXT } as const

/**
 * The low and high of a figure's 95% interval over the runs, for an error bar; none with one run.
 * None of these figures can be below 0, so neither is its bar (a wide interval from few runs can be).
 */
function bar (interval: Interval | null | undefined): { low: number, high: number } | Record<string, never> {
  return interval?.low == null || interval.high == null ? {} : { low: Math.max(0, interval.low), high: interval.high }
}

// With error bars, a bar's number starts just right of its whisker instead of on it.
const BESIDE_THE_BAR = { align: 'left', dx: 4 } as const

// An error bar from `low` to `high` where a row has them (rows without draw none).
const errorBar = (x: object, extra: object = {}): object => ({ mark: { type: 'rule', strokeWidth: 2, color: '#222' }, encoding: { x, ...extra, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } } })

export function buildCharts (report: CompareReport): Chart[] {
  const results = report.results
  const charts: Chart[] = []
  // Each mode in its place in COMPARE_MODES, a second run of one (jwt#2) beside it, in its colour.
  const names = [...new Set([...results.map((r) => r.mode), ...(report.sweep ?? []).map((p) => p.mode)])]
  const rank = (name: string): number => (COMPARE_MODES as readonly string[]).indexOf(baseMode(name))
  const modes = names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
  const MODE_COLOURS = { domain: [...modes], range: modes.map((m) => COLOURS[baseMode(m)] ?? '#888888') }
  const modeColour = { field: 'mode', type: 'nominal', title: 'mode', scale: MODE_COLOURS } as const
  // Six names and more (postgres+local-cache...) no longer fit side by side: slanted.
  const modeAxis = { field: 'mode', type: 'nominal', title: null, sort: modes, axis: { labelAngle: modes.length > 5 ? -35 : 0 } } as const
  const runs = report.config.runs
  const beside = runs > 1 ? BESIDE_THE_BAR : {}
  const intervals = runs > 1 ? `; the black bar is the mean's 95% interval over the ${runs} runs` : '; one run per mode, so no interval (--runs 3 draws them)'

  charts.push({
    id: 'throughput',
    title: 'Throughput',
    caption: `Requests per second through the balancer, ${report.config.connections} connections${runs > 1 ? `, the mean of ${runs} runs` : ''}${intervals}.`,
    spec: {
      ...base,
      data: { values: results.map((r) => ({ mode: r.mode, rps: r.rps, ...bar(r.confidence?.rps) })) },
      layer: [
        { mark: { type: 'bar' }, encoding: { x: modeAxis, y: { field: 'rps', type: 'quantitative', title: 'req/s' }, color: modeColour } },
        errorBar(modeAxis),
        { mark: { type: 'text', dy: -6, baseline: 'bottom', ...beside }, encoding: { x: modeAxis, y: { field: 'rps', type: 'quantitative' }, text: { field: 'rps', type: 'quantitative', format: ',.0f' } } }
      ]
    } as TopLevelSpec
  })

  const percentile = { field: 'percentile', type: 'nominal', sort: ['p50', 'p90', 'p99'] } as const
  charts.push({
    id: 'latency',
    title: 'Latency percentiles',
    caption: `Client-side latency of every response (2xx and 401), milliseconds${intervals}.`,
    spec: {
      ...base,
      data: { values: results.flatMap((r) => (['p50', 'p90', 'p99'] as const).map((p) => ({ mode: r.mode, percentile: p, ms: r.latencyMs[p], ...bar(r.confidence?.[p]) }))) },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x: modeAxis,
            xOffset: percentile,
            y: { field: 'ms', type: 'quantitative', title: 'ms' },
            color: { ...percentile, title: 'percentile', scale: { scheme: 'blues' } }
          }
        },
        errorBar(modeAxis, { xOffset: percentile })
      ]
    } as TopLevelSpec
  })

  if (runs > 1) charts.push(roundsChart(report, modeColour))

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
    title: 'Store round trips and server CPU, per request',
    caption: `Measured on the app servers: round trips to the session store per request (session_store_commands_total: Redis commands, PostgreSQL statements) and the servers' CPU per request (process_cpu_seconds_total), the whole request and not only its auth step${intervals}.`,
    spec: {
      $schema: base.$schema,
      config: base.config,
      data: {
        // Store round trips only when a mode with a store ran: a panel of zeros says nothing.
        values: results.flatMap((r) => [
          ...(modes.some((m) => storeOf(baseMode(m)) !== null) ? [{ mode: r.mode, measure: 'store round trips per request', value: r.storeCommandsPerRequest }] : []),
          { mode: r.mode, measure: 'server CPU, µs per request', value: r.cpuUsPerRequest, ...bar(r.confidence?.cpuUsPerRequest) }
        ])
      },
      facet: { column: { field: 'measure', type: 'nominal', title: null } },
      spec: {
        width: 320,
        height: 220,
        layer: [
          { mark: { type: 'bar' }, encoding: { x: modeAxis, y: { field: 'value', type: 'quantitative', title: null }, color: modeColour } },
          errorBar(modeAxis),
          { mark: { type: 'text', dy: -4, baseline: 'bottom', ...beside }, encoding: { x: modeAxis, y: { field: 'value', type: 'quantitative' }, text: { field: 'value', type: 'quantitative', format: ',.2~f' } } }
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
  const stateMeasured = results.some((r) => !baseMode(r.mode).startsWith('jwt') && r.memoryCost.bytesPerSession !== null)
  const memoryRows = results.flatMap((r) => [
    ...(stateMeasured && r.memoryCost.bytesPerSession !== null ? [{ mode: r.mode, measure: 'server-side state per session, bytes', value: r.memoryCost.bytesPerSession }] : []),
    ...(r.memoryCost.credentialBytes !== null ? [{ mode: r.mode, measure: 'credential sent on every request, bytes', value: r.memoryCost.credentialBytes }] : [])
  ])
  if (memoryRows.some((row) => row.value > 0)) {
    charts.push({
      id: 'memory-cost',
      title: 'Memory per session, and the credential\'s size',
      caption: 'Server-side bytes per session (memory: one server\'s heap; redis: Redis used_memory; postgres: the sessions table and its indexes; jwt, jwt-eddsa and cookie: none; jwt-revocation: none per live session, a jti per logout), and the bytes of the credential a client sends.',
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
    // The interval of the median that is drawn; a log axis cannot go to 0 or below, so a low end under it is drawn at the axis' floor.
    const interval = r.serverTimingAuthUs !== null ? bar(r.confidence?.authP50) : {}
    return { mode: r.mode, us: shown, what, label: us < BELOW_RESOLUTION_US ? '< 1 µs' : `${us < 100 ? Number(us.toFixed(1)) : Math.round(us).toLocaleString('en-US')} µs`, ...interval }
  })
  const values = rows.flatMap((r) => [r.us, ...('high' in r ? [r.high as number] : [])])
  const bottom = 10 ** (Math.floor(Math.log10(Math.min(...values, 1))) - 1)
  const top = 10 ** Math.ceil(Math.log10(Math.max(...values, 10) * 1.5))
  // "median" or "mean": the caption says itself that it was under load.
  const what = [...new Set(rows.map((r) => r.what.replace(' under load', '')))].join(' or ')
  for (const row of rows as Array<{ low?: number }>) if (row.low !== undefined) row.low = Math.max(row.low, bottom)
  const runs = report.config.runs
  return {
    id: 'auth-cost',
    title: 'The auth step, per request',
    caption: `The time a request spends in the auth step, on the app servers: the ${what} of every response's Server-Timing, under the run's load (${report.config.connections} connections, after the warm-up; the mean, from auth_duration_seconds, is in the numbers below)${runs > 1 ? `; the black bar is the median's 95% interval over the ${runs} runs` : ''}. On a log scale: each gridline is ten times the one below, so a Map lookup, an HMAC and a Redis round trip all show.`,
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
        errorBar(modeAxis),
        { mark: { type: 'text', dy: -5, baseline: 'bottom', fontWeight: 'bold', ...(runs > 1 ? BESIDE_THE_BAR : {}) }, encoding: { x: modeAxis, y: { field: 'us', type: 'quantitative' }, text: { field: 'label' } } }
      ]
    } as TopLevelSpec
  }
}

/** req/s of each mode, round after round: a mode that was not warm, or a machine whose load changed, shows as a slope. */
function roundsChart (report: CompareReport, modeColour: object): Chart {
  const values = report.results.flatMap((r) => (r.allRuns ?? []).map((run) => ({ mode: r.mode, round: run.round, rps: run.rps, warmup: run.warmup?.seconds ?? null })))
  return {
    id: 'rounds',
    title: 'Round by round',
    caption: `Each mode's req/s in each of the ${report.config.runs} rounds, in the order they ran (each round starts with a different mode). After a warm-up until steady, the lines should be flat but for noise; a line that climbs or falls every round says a process was not warm, or the machine's other work changed.`,
    spec: {
      ...base,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'round', type: 'ordinal', title: 'round', axis: { labelAngle: 0 } },
        y: { field: 'rps', type: 'quantitative', title: 'req/s', scale: { zero: false } },
        color: modeColour
      }
    } as TopLevelSpec
  }
}

function perServerRows (r: ModeResult): Array<{ mode: string, server: string, outcome: string, count: number, order: number }> {
  return Object.entries(r.perServer).flatMap(([server, p]) => [
    { mode: r.mode, server, outcome: '2xx', count: p.ok, order: 0 },
    { mode: r.mode, server, outcome: '401', count: p.unauthorized, order: 1 }
  ])
}
