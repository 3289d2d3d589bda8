import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'
import t from 'tap'
import { buildCharts, renderHtmlReport } from '../../../scripts/compare/report-html.ts'
import { fakeReport } from '../../helpers/compare-report.ts'

/** Debian's chromium (what .ci/run installs), or another one named by CHROMIUM_PATH. */
function findChromium (): string | undefined {
  return [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']
    .find((p): p is string => p !== undefined && p !== '' && existsSync(p))
}

t.test('the page is self-contained: no script, no stylesheet or image from elsewhere, every chart inline SVG', async (t) => {
  const html = await renderHtmlReport(fakeReport({ sweep: true }))
  t.notMatch(html, /<script/i)
  t.notMatch(html, /\b(?:src|href)=["']?(?:https?:)?\/\//i, 'nothing fetched from a network')
  t.equal((html.match(/<svg /g) ?? []).length, buildCharts(fakeReport({ sweep: true })).length)
  t.same(buildCharts(fakeReport()).map((c) => c.id), ['throughput', 'latency', 'failure-rate', 'per-server', 'auth-cost', 'request-cost', 'key-rotation', 'memory-cost'], 'without a sweep, no sweep charts')
  const oneKey = fakeReport()
  for (const r of oneKey.results) r.byKid = null
  t.notOk(buildCharts(oneKey).some((c) => c.id === 'key-rotation'), 'no key chart when no run held tokens from two keys')
  const threeRuns = buildCharts(fakeReport({ runs: 3 }))
  t.same(threeRuns.map((c) => c.id).slice(0, 3), ['throughput', 'latency', 'rounds'], 'with runs: the rounds, one line per mode')
  t.match(threeRuns[0]?.caption, 'the mean of 3 runs; the black bar is the mean\'s 95% interval over the 3 runs')
  t.match(buildCharts(fakeReport())[0]?.caption, 'one run per mode, so no interval (--runs 3 draws them)')
})

const executablePath = findChromium()
// CI installs chromium (.ci/run); a test that needs it skips only when .ci/run said why it could not, never silently.
const unavailable = executablePath === undefined ? process.env.CHROMIUM_UNAVAILABLE : undefined

t.test('in headless Chromium every chart renders, with marks, and the page makes no request', { skip: unavailable !== undefined ? `chromium could not be installed here: ${unavailable}` : false }, async (t) => {
  if (executablePath === undefined) {
    t.fail('chromium not found: install it (Debian/Ubuntu: apt-get install -y chromium) or set CHROMIUM_PATH; .ci/run installs it')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'compare-report-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const page = join(dir, 'report.html')
  writeFileSync(page, await renderHtmlReport(fakeReport({ sweep: true })))

  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1300, height: 900 }
  })
  t.teardown(async () => await context.close())
  const tab = await context.newPage()
  const requests: string[] = []
  tab.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()) })
  await tab.goto(pathToFileURL(page).href)

  const charts = await tab.$$eval('figure.chart', (figures) => figures.map((f) => {
    const svg = f.querySelector('svg')
    const box = svg?.getBoundingClientRect()
    // Marks Vega drew with a real size: bars, lines, points, ticks, rules (not axes or legends).
    const marks = [...f.querySelectorAll('svg g.role-mark:not([class*="role-axis"]):not([class*="role-legend"]) > path, svg g.role-mark > line, svg g.role-mark > rect')]
      .filter((m) => {
        const b = (m as unknown as { getBBox: () => { width: number, height: number } }).getBBox()
        return b.width > 0 || b.height > 0
      })
    return { id: f.id, width: box?.width ?? 0, height: box?.height ?? 0, marks: marks.length, text: svg?.textContent ?? '' }
  }))
  t.same(charts.map((c) => c.id), ['throughput', 'latency', 'failure-rate', 'per-server', 'auth-cost', 'request-cost', 'key-rotation', 'memory-cost', 'sweep-throughput', 'sweep-failure'].map((id) => `chart-${id}`))
  for (const chart of charts) {
    t.ok(chart.width > 100 && chart.height > 100, `${chart.id}: drawn ${Math.round(chart.width)}x${Math.round(chart.height)}`)
    t.ok(chart.marks > 0, `${chart.id}: ${chart.marks} marks with a size`)
    t.match(chart.text, /memory|p50|2xx|jwt/, `${chart.id}: labelled`)
  }
  const perServer = charts.find((c) => c.id === 'chart-per-server')
  t.ok((perServer?.marks ?? 0) >= 3 * 4 * 2, 'per server: a 2xx and a 401 segment for each of 3 servers in 4 modes')
  t.ok((charts.find((c) => c.id === 'chart-key-rotation')?.marks ?? 0) >= 2, 'by signing key: a bar for each of the two keys')
  t.match(charts.find((c) => c.id === 'chart-key-rotation')?.text, /old \(accepted\)[\s\S]*new \(signs\)|new \(signs\)[\s\S]*old \(accepted\)/, 'named by kid, and which one signs')
  t.same(requests, [], 'the page asked the network for nothing')

  t.test('the auth step\'s chart: a log scale, so every mode\'s bar shows, with its number', async (t) => {
    const bars = await tab.$$eval('#chart-auth-cost svg g.role-mark.mark-rect > path', (paths) => paths.map((p) => {
      const b = (p as unknown as { getBBox: () => { width: number, height: number } }).getBBox()
      return { width: b.width, height: b.height }
    }))
    t.equal(bars.length, 4, 'a bar for each of the four modes')
    for (const [i, bar] of bars.entries()) t.ok(bar.height >= 4 && bar.width >= 4, `bar ${i + 1}: ${bar.width.toFixed(1)} x ${bar.height.toFixed(1)} px, visible`)
    // The fake report's auth steps: memory 1.6 µs, jwt 12, redis 72, jwt-revocation 76 (the p50s).
    const text = await tab.$eval('#chart-auth-cost svg', (svg) => svg.textContent ?? '')
    for (const label of ['1.6 µs', '12 µs', '72 µs', '76 µs']) t.match(text, label, `${label} printed on the chart`)
    t.match(text, /log scale/, 'and the axis says it is a log scale')
  })

  t.test('the numbers fit the page: tables, not a block of text running off it', async (t) => {
    const numbers = await tab.$eval('#numbers', (el) => ({ scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, tables: el.querySelectorAll('table').length }))
    t.ok(numbers.scrollWidth <= numbers.clientWidth, `the numbers block is ${numbers.scrollWidth} px wide inside ${numbers.clientWidth} px`)
    t.ok(numbers.tables >= 6, `${numbers.tables} tables`)
    const page = await tab.$eval('html', (el) => ({ scrollWidth: el.scrollWidth, clientWidth: el.clientWidth }))
    t.ok(page.scrollWidth <= page.clientWidth, `nothing on the page runs off it sideways (${page.scrollWidth} px in ${page.clientWidth})`)
    await tab.setViewportSize({ width: 900, height: 900 })
    const narrow = await tab.$eval('#numbers', (el) => ({ scrollWidth: el.scrollWidth, clientWidth: el.clientWidth }))
    t.ok(narrow.scrollWidth <= narrow.clientWidth, `in a 900 px window too: ${narrow.scrollWidth} px inside ${narrow.clientWidth} px`)
    await tab.setViewportSize({ width: 1300, height: 900 })
  })

  t.test('chart text is big enough to read next to the dashboard\'s', async (t) => {
    const sizes = await tab.$$eval('figure.chart svg', (svgs) => svgs.map((svg) => {
      // The page's own getComputedStyle (this callback runs in the browser; the test compiles without the DOM types).
      const style = (globalThis as unknown as { getComputedStyle: (el: unknown) => { fontSize: string } }).getComputedStyle
      const px = (selector: string): number[] => [...svg.querySelectorAll(selector)].map((el) => Number.parseFloat(style(el).fontSize))
      // Two labels of one axis drawn over each other: the text grew and the chart did not.
      type Box = { left: number, right: number, top: number, bottom: number }
      const overlaps = [...svg.querySelectorAll('g.role-axis-label')].flatMap((axis) => {
        const boxes = [...axis.querySelectorAll('text')].map((el) => ({ text: el.textContent ?? '', box: (el as unknown as { getBoundingClientRect: () => Box }).getBoundingClientRect() }))
        return boxes.flatMap((a, i) => boxes.slice(i + 1).filter((b) => a.box.left < b.box.right - 1 && b.box.left < a.box.right - 1 && a.box.top < b.box.bottom - 1 && b.box.top < a.box.bottom - 1).map((b) => `${a.text} / ${b.text}`))
      })
      return { id: svg.closest('figure')?.id ?? '', labels: px('g.role-axis-label text'), titles: px('g.role-axis-title text'), overlaps }
    }))
    for (const chart of sizes) {
      t.same(chart.overlaps, [], `${chart.id}: no axis label drawn over another`)
      t.ok(chart.labels.length > 0 && Math.min(...chart.labels) >= 13, `${chart.id}: axis labels at least 13 px (smallest ${Math.min(...chart.labels)})`)
      if (chart.titles.length > 0) t.ok(Math.min(...chart.titles) >= 14, `${chart.id}: axis titles at least 14 px (smallest ${Math.min(...chart.titles)})`)
    }
  })

  t.test('with runs: an error bar on each mode\'s bar, as tall as its 95% interval, and a line per mode through the rounds', async (t) => {
    const report = fakeReport({ runs: 3 })
    const threeRuns = join(dir, 'three-runs.html')
    writeFileSync(threeRuns, await renderHtmlReport(report))
    await tab.goto(pathToFileURL(threeRuns).href)
    const sizes = async (selector: string): Promise<Array<{ width: number, height: number }>> => await tab.$$eval(selector, (marks) => marks.map((m) => {
      const b = (m as unknown as { getBBox: () => { width: number, height: number } }).getBBox()
      return { width: b.width, height: b.height }
    }))
    const bars = await sizes('#chart-throughput svg g.mark-rect.role-mark > path')
    const whiskers = await sizes('#chart-throughput svg g.mark-rule.role-mark > line')
    t.equal(whiskers.length, 4, 'a whisker per mode')
    // Each interval is ±5% of its mean, so 10% of the bar's height (the axis starts at 0).
    for (const [i, w] of whiskers.entries()) {
      const bar = bars[i]?.height ?? 0
      t.ok(Math.abs(w.height - 0.0994 * bar) < 3, `whisker ${i + 1}: ${w.height.toFixed(1)} px for a bar of ${bar.toFixed(1)} px`)
    }
    const points = await sizes('#chart-rounds svg g.mark-symbol.role-mark > path')
    t.equal(points.length, 4 * 3, 'a point per mode and round')
    t.match(await tab.$eval('#chart-rounds svg', (svg) => svg.textContent ?? ''), /round[\s\S]*req\/s/)
  })

  const shot = join(tmpdir(), 'compare-report-test.png')
  await tab.screenshot({ path: shot, fullPage: true })
  t.comment(`screenshot: ${shot}`)
})
