import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { LaunchError } from './cluster.ts'
import { parseCompareArgs, USAGE, UsageError, type CompareOptions } from './compare/options.ts'
import { createReporter } from './compare/progress.ts'
import { formatReport } from './compare/report-text.ts'
import { runCompare } from './compare/run-compare.ts'
import { formatLogLine } from './lib/log-format.ts'

// The only file of `npm run compare` that touches process: arguments, output files, exit codes.
let options: CompareOptions
try {
  options = parseCompareArgs(process.argv.slice(2))
} catch (err) {
  if (!(err instanceof UsageError)) throw err
  process.stderr.write(`${err.message}\n\n${USAGE}\n`)
  process.exit(2)
}
if (options.help) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}

const reporter = createReporter()
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // The clusters are child processes: the launcher's exit hook kills whatever is left.
    interrupted = true
    reporter.clear()
    process.stderr.write(`\n${signal}: stopping.\n`)
    process.exit(130)
  })
}

const onLog = options.verbose ? (source: string, line: string) => { reporter.clear(); process.stderr.write(`${formatLogLine(source, line, false)}\n`) } : undefined

let report
try {
  report = await runCompare(options, reporter, onLog)
} catch (err) {
  reporter.clear()
  if (!interrupted) process.stderr.write(`\nnpm run compare failed: ${(err as Error).message}\n`)
  process.exit(err instanceof LaunchError ? 2 : 1)
}
reporter.clear()
reporter.step(`done in ${report.config.elapsedSeconds.toFixed(0)} s`)
process.stdout.write(`\n${formatReport(report)}\n`)

if (options.json !== null) {
  const file = resolve(options.json)
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`)
  process.stdout.write(`\nJSON: ${file}\n`)
}
if (options.html !== null) {
  const { renderHtmlReport } = await import('./compare/report-html.ts')
  const file = resolve(options.html)
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, await renderHtmlReport(report))
  process.stdout.write(`${options.json === null ? '\n' : ''}HTML: ${file}\n`)
}
