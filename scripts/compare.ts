import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { LaunchError } from './cluster.ts'
import { runCapacity, type CapacityReport } from './compare/capacity.ts'
import { parseCompareArgs, USAGE, type CompareOptions } from './compare/options.ts'
import { formatCapacityReport } from './compare/report-capacity-text.ts'
import { createReporter } from './compare/progress.ts'
import { formatReport } from './compare/report-text.ts'
import { runCompare, type CompareReport } from './compare/run-compare.ts'
import { optionsOrExit } from './lib/cli.ts'
import { formatLogLine } from './lib/log-format.ts'

// The only file of `npm run compare` that touches process: arguments, output files, exit codes.
const options: CompareOptions = optionsOrExit(() => parseCompareArgs(process.argv.slice(2)), USAGE)

// Before a minute of measuring, not after it: can this machine write the HTML report?
let renderHtmlReport: ((report: CompareReport) => Promise<string>) | undefined
let renderCapacityHtml: ((report: CapacityReport) => Promise<string>) | undefined
if (options.html !== null) {
  try {
    ({ renderHtmlReport } = await import('./compare/report-html.ts'))
    ;({ renderCapacityHtml } = await import('./compare/report-capacity-html.ts'))
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err
    // vega and vega-lite are dev dependencies: an image built with --omit=dev has neither.
    process.stderr.write(`--html needs vega and vega-lite, which are not installed here (${(err as Error).message.split('\n')[0] ?? ''}).\n` +
      'Run npm install, or write --json FILE here and turn it into a page where they are installed: npm run compare -- --from FILE --html PAGE\n')
    process.exit(1)
  }
}

const reporter = createReporter()
// --slo-p99-ms (or --from a report it wrote): capacity at a latency target, a report of its own kind.
let report: CompareReport | CapacityReport
if (options.from !== null) {
  report = JSON.parse(await readFile(options.from, 'utf8')) as CompareReport | CapacityReport
} else {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // Every cluster process is a child: the launcher's exit hook kills whatever is left.
      reporter.clear()
      process.stderr.write(`\n${signal}: stopping.\n`)
      process.exit(130)
    })
  }
  const onLog = options.verbose ? (source: string, line: string) => { reporter.clear(); process.stderr.write(`${formatLogLine(source, line, false)}\n`) } : undefined
  try {
    report = options.sloP99Ms !== null
      ? await runCapacity({ ...options, sloP99Ms: options.sloP99Ms }, reporter, onLog)
      : await runCompare(options, reporter, onLog)
  } catch (err) {
    reporter.clear()
    process.stderr.write(`\nnpm run compare failed: ${(err as Error).message}\n`)
    process.exit(err instanceof LaunchError ? 2 : 1)
  }
  reporter.clear()
  reporter.step(`done in ${report.config.elapsedSeconds.toFixed(0)} s`)
}
const isCapacity = (r: CompareReport | CapacityReport): r is CapacityReport => 'sloP99Ms' in r.config
process.stdout.write(`\n${isCapacity(report) ? formatCapacityReport(report) : formatReport(report)}\n\n`)

async function write (name: string, target: string, content: () => Promise<string> | string): Promise<void> {
  const file = resolve(target)
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, await content())
  process.stdout.write(`${name}: ${file}\n`)
}
if (options.json !== null) await write('JSON', options.json, () => `${JSON.stringify(report, null, 2)}\n`)
if (options.html !== null && renderHtmlReport !== undefined && renderCapacityHtml !== undefined) {
  const done = report
  await write('HTML', options.html, async () => isCapacity(done)
    ? await (renderCapacityHtml as (r: CapacityReport) => Promise<string>)(done)
    : await (renderHtmlReport as (r: CompareReport) => Promise<string>)(done))
}
