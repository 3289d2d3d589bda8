import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
import { UsageError, withNegativeValues } from '../lib/cli.ts'
import { ASSUMPTIONS, DEFAULT_ASSUMPTIONS, type Assumptions } from './assumptions.ts'

export { UsageError }

const assumptionLines = ASSUMPTIONS.map((info) => {
  const value = DEFAULT_ASSUMPTIONS[info.key]
  const left = `  --${info.flag} N`
  return `${left.padEnd(28)}${info.why} (default ${value === null ? 'see there' : `${value} ${info.unit}`})`
}).join('\n')

export const USAGE = `Usage: npm run scale -- --from FILE [options]

Reads a compare JSON (npm run compare -- --json FILE) and prints, for each mode it measured, what
that mode needs at a target rate and number of live sessions: app-server cores, balancer cores and
instances, network, Redis nodes or PostgreSQL cores and their memory; and where each mode stops
scaling (the store's one thread, its memory, the database primary, the balancer, the network), at
what req/s. Every figure not in the JSON is an assumption below, listed with its value.
  --from FILE                 the compare JSON (required)
  --rps N                     the target, requests per second (default 100000)
  --sessions N                the target, live sessions (default 10000000)
  --json OUT                  also write the plan as JSON
Assumptions:
${assumptionLines}`

export interface ScaleOptions {
  from: string
  rps: number
  sessions: number
  json: string | null
  assumptions: Assumptions
  /** The assumption flags given on the command line (the report marks the defaults it used). */
  given: Array<keyof Assumptions>
  help: boolean
}

const OPTIONS = {
  from: { type: 'string' },
  rps: { type: 'string' },
  sessions: { type: 'string' },
  json: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  ...Object.fromEntries(ASSUMPTIONS.map((info) => [info.flag, { type: 'string' }]))
} satisfies ParseArgsOptionsConfig

function numberFlag (flag: string, raw: string, min: number, max = Number.POSITIVE_INFINITY, whole = false): number {
  const n = Number(raw)
  const range = max === Number.POSITIVE_INFINITY ? `at least ${min}` : `from ${min} to ${max}`
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be ${whole ? 'a whole number' : 'a number'} ${range} (got "${raw}")`)
  }
  return n
}

/** The command line, checked: a flag it does not know, a value missing or out of range is a UsageError naming it. */
export function parseScaleArgs (argv: string[]): ScaleOptions {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: withNegativeValues(argv, OPTIONS), options: OPTIONS, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const text = (name: string): string | undefined => typeof values[name] === 'string' ? values[name] : undefined
  const help = values.help === true
  const from = text('from')
  if (from === undefined && !help) throw new UsageError('--from FILE is required: the compare JSON to plan from (npm run compare -- --json FILE writes one)')
  const assumptions: Assumptions = { ...DEFAULT_ASSUMPTIONS }
  const given: Array<keyof Assumptions> = []
  for (const info of ASSUMPTIONS) {
    const raw = text(info.flag)
    if (raw === undefined) continue
    assumptions[info.key] = numberFlag(info.flag, raw, info.min, info.max, info.whole)
    given.push(info.key)
  }
  const json = text('json')
  if (json !== undefined && json.trim() === '') throw new UsageError('--json needs a file name')
  return {
    from: from ?? '',
    rps: numberFlag('rps', text('rps') ?? '100000', 1),
    sessions: numberFlag('sessions', text('sessions') ?? '10000000', 0, Number.POSITIVE_INFINITY, true),
    json: json ?? null,
    assumptions,
    given,
    help
  }
}
