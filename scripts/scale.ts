import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseScaleArgs, USAGE, type ScaleOptions } from './scale/options.ts'
import { planAll } from './scale/plan.ts'
import { readCompareReport, ScaleInputError, type MeasuredReport } from './scale/read-compare.ts'
import { formatScaleReport, type ScaleReport } from './scale/report-text.ts'
import { optionsOrExit } from './lib/cli.ts'

// The only file of `npm run scale` that touches process: arguments, the files, exit codes.
const options: ScaleOptions = optionsOrExit(() => parseScaleArgs(process.argv.slice(2)), USAGE)

let measured: MeasuredReport
try {
  let text: string
  try {
    text = await readFile(options.from, 'utf8')
  } catch (err) {
    throw new ScaleInputError(`cannot read ${options.from}: ${(err as Error).message}`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new ScaleInputError(`${options.from}: not JSON (${(err as Error).message})`)
  }
  measured = readCompareReport(data, options.from)
} catch (err) {
  if (!(err instanceof ScaleInputError)) throw err
  process.stderr.write(`npm run scale: ${err.message}\n`)
  process.exit(2)
}

const target = { rps: options.rps, sessions: options.sessions }
const report: ScaleReport = { from: options.from, target, assumptions: options.assumptions, given: options.given, measured, plans: planAll(measured, target, options.assumptions) }
process.stdout.write(`${formatScaleReport(report)}\n`)
if (options.json !== null) {
  const file = resolve(options.json)
  await mkdir(dirname(file), { recursive: true })
  // Infinity (a limit that never comes) is not JSON: null says the same.
  await writeFile(file, `${JSON.stringify(report, (_key, value: unknown) => typeof value === 'number' && !Number.isFinite(value) ? null : value, 2)}\n`)
  process.stdout.write(`\nJSON: ${file}\n`)
}
