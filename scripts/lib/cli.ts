// What every command in scripts/ does with its arguments: strict parsing, --help (-h)
// printing the usage, and a bad flag or value answered with the message and the usage
// on stderr and exit code 2, before anything is started.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'

const HELP = { help: { type: 'boolean', short: 'h' } } as const

/** Prints `message`, a blank line and the usage to stderr, and exits 2. */
export function usageFailure (usage: string): (message: string) => never {
  return (message) => {
    process.stderr.write(`${message}\n\n${usage}\n`)
    process.exit(2)
  }
}

/**
 * A bad flag or value, thrown by a command's own pure parser (one that tests call without
 * exiting): `optionsOrExit` turns it into the message, the usage and exit 2.
 */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** Runs a pure parser: a UsageError becomes the message and the usage on stderr and exit 2; --help prints the usage and exits 0. */
export function optionsOrExit<T extends { help: boolean }> (parse: () => T, usage: string): T {
  let options: T
  try {
    options = parse()
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    return usageFailure(usage)(err.message)
  }
  if (options.help) {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  return options
}

/**
 * The command line, parsed strictly against `options` plus --help/-h. With --help, prints the
 * usage and exits 0; with a flag it does not know or a value of the wrong kind, fails with the
 * usage. Returns the values, and `fail` for the checks the command makes itself.
 */
export function parseCommandLine<const O extends ParseArgsOptionsConfig> (usage: string, options: O, argv: string[] = process.argv.slice(2)): { values: Values<O>, fail: (message: string) => never } {
  // Annotated, so that TypeScript knows a call to it does not return.
  const fail: (message: string) => never = usageFailure(usage)
  const config: Config<O> = { args: withNegativeValues(argv, options), options: { ...options, ...HELP }, strict: true, allowPositionals: false }
  let values: Values<O>
  try {
    values = parseArgs(config).values
  } catch (err) {
    fail((err as Error).message)
  }
  if ((values as { help?: boolean }).help === true) {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  return { values, fail }
}

// A value that is a negative number: -1, -0.5, -.5, -1e3.
const NEGATIVE_NUMBER = /^-\.?\d/

/**
 * The arguments with `--servers -1` written as `--servers=-1`, for every flag that takes a value.
 * parseArgs reads an argument that starts with a dash as a flag of its own, so it refuses
 * `--servers -1` as "ambiguous" and the check that names the flag's range never runs (while
 * `--servers=-1` reaches it). Only numbers are joined: in `--port --mode jwt` the value is
 * still missing. Every command's parsing goes through here (compare's too).
 */
export function withNegativeValues (argv: readonly string[], options: ParseArgsOptionsConfig): string[] {
  const takesValue = (arg: string): string | undefined => {
    const name = arg.startsWith('--')
      ? arg.slice(2)
      : /^-[^-]$/.test(arg) ? Object.keys(options).find((key) => options[key]?.short === arg[1]) : undefined
    return name !== undefined && options[name]?.type === 'string' ? name : undefined
  }
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    // After `--` nothing is a flag (a POSIX convention parseArgs keeps).
    if (arg === '--') {
      out.push(...argv.slice(i))
      break
    }
    const name = takesValue(arg)
    const next = argv[i + 1]
    if (name !== undefined && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`--${name}=${next}`)
      i++
    } else {
      out.push(arg)
    }
  }
  return out
}

interface Config<O extends ParseArgsOptionsConfig> {
  args: string[]
  options: O & typeof HELP
  strict: true
  allowPositionals: false
}

type Values<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<Config<O>>>['values']

/** `raw` as a whole number from `min` to `max`, or a failure naming the flag and what it got. */
export function wholeNumber (fail: (message: string) => never, flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) fail(`--${flag} must be a whole number from ${min} to ${max} (got "${raw}")`)
  return n
}
