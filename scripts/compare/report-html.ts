import { parse, View } from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { buildCharts } from './report-charts.ts'
import { plainWords, reportSections, warmupWords, type ReportSection } from './report-text.ts'
import type { CompareReport } from './run-compare.ts'

export { buildCharts, type Chart } from './report-charts.ts'

/**
 * The report as one HTML page with no scripts and no requests: every chart is a Vega-Lite spec
 * (report-charts.ts) rendered to SVG here, in Node (vega's headless renderer needs no canvas for
 * SVG), and inlined.
 */

export async function renderSvg (spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

/** The pages' frame, shared by this report and the capacity report (report-capacity-html.ts). */
export const PAGE_CSS = `  body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
  .meta { color: #555; margin-top: 0; }`
/** The numbers' tables and the warning box, shared by both reports. */
export const NUMBERS_CSS = `  .warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5rem 0.8rem; }
  #numbers table { border-collapse: collapse; font-size: 14px; margin: 0.3rem 0 0.4rem; max-width: 100%; }
  #numbers th, #numbers td { padding: 0.2rem 0.5rem; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; overflow-wrap: break-word; }
  #numbers th { background: #f6f6f6; font-weight: 600; }
  #numbers .number { text-align: right; font-variant-numeric: tabular-nums; }
  #numbers h3 { font-size: 1rem; font-weight: 600; margin: 1.2rem 0 0.2rem; }
  #numbers .note { color: #555; font-size: 0.85rem; margin: 0.2rem 0; }`

/** One section of the numbers as an HTML table: names left, numbers right, as in the text report. */
export function sectionHtml (section: ReportSection): string {
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
${PAGE_CSS}
  .charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
  figure.chart { margin: 0; padding: 0.8rem; border: 1px solid #ddd; border-radius: 6px; background: #fff; }
  figure.chart h3 { margin: 0; font-size: 1.1rem; }
  figure.chart p { margin: 0.2rem 0 0.6rem; color: #555; font-size: 0.9rem; max-width: 40rem; }
${NUMBERS_CSS}
  ul.summary li { margin-bottom: 0.3rem; }
</style>
</head>
<body>
<h1>Where a session lives (a server's memory, Redis, PostgreSQL, a JWT, an encrypted cookie), under load</h1>
<p class="meta">${escapeHtml(c.target)}; ${c.connections} connections, one session each; ${c.durationSeconds} s of load after ${escapeHtml(warmupWords(report))}${c.runs > 1 ? `; the mean of ${c.runs} runs, with 95% intervals` : '; one run per mode, so no intervals'}. Started ${escapeHtml(c.startedAt)}, ${c.machine.cores} cores, load average ${c.machine.loadAverageAtStart.toFixed(1)} at the start.</p>
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
