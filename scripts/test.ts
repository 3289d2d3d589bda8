import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Parser, type Result } from 'tap-parser'
import { compileCacheEnv } from './lib/compile-cache.ts'

/**
 * `npm test`: the type check, the lint and the tap suite, all three run even when one
 * fails, so one report shows everything; the last line counts them as
 * `N passed, N failed` (each tap assertion counts, at any depth, and each of the first two steps;
 * skipped and todo assertions are counted apart, as `, N skipped`).
 * Extra arguments go to tap, e.g. `npm test -- test/cluster`.
 *
 * `npm run test:heavy` (`--heavy`) runs the checks too heavy for every run of `npm test`: each
 * breaks a whole cluster under load for tens of seconds, or runs a whole command end to end
 * (HEAVY below). CI runs both.
 */
const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name: string): string => join(root, 'node_modules', '.bin', name)
const results = join(root, '.tap', 'test-results')

function step (title: string, command: string, args: string[]): boolean {
  process.stdout.write(`\n== ${title}\n`)
  // The compile cache for tap's test processes too, and through them every process they start.
  const run = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...compileCacheEnv() } })
  const ok = run.status === 0
  process.stdout.write(`== ${title}: ${ok ? 'ok' : `FAILED (${run.error?.message ?? `exit ${String(run.status ?? run.signal)}`})`}\n`)
  return ok
}

/**
 * Test files `npm test` leaves to `npm run test:heavy`: the fault tests (`npm run faults` under
 * tap), and the two that run a whole command end to end: `npm run compare` over every mode
 * (about 100 s on an idle 2-core machine) and the whole walkthrough, sixteen steps on real
 * clusters (about 95 s). Their parts are tested in npm test; these keep it near three minutes.
 */
const HEAVY = [/^test\/faults\//, /^test\/scripts\/compare\.test\.ts$/, /^test\/scripts\/demo\/cli-auto\.test\.ts$/]

const heavy = process.argv[2] === '--heavy'
const given = process.argv.slice(heavy ? 3 : 2)
const all = listFiles(join(root, 'test'), '.test.ts').map((file) => file.slice(root.length)).sort()
const suite = all.filter((file) => HEAVY.some((pattern) => pattern.test(file)) === heavy)

let passed = 0
let failed = 0
let skipped = 0
// The type check and the lint once, in npm test: the heavy suite runs the same tree after it.
const checks = heavy ? [] : [['type check', bin('tsc'), ['--noEmit', '-p', '.']], ['lint', bin('eslint'), ['.']]] as const
for (const [title, command, args] of checks) {
  if (step(title, command, [...args])) passed++
  else failed++
}
rmSync(results, { recursive: true, force: true })
const tapOk = step(heavy ? 'tap (heavy: npm run test:heavy)' : 'tap', bin('tap'), given.length > 0 ? given : suite)
let counted = 0
for (const file of listFiles(results, '.tap')) {
  const parser = new Parser()
  countAssertions(parser)
  parser.end(readFileSync(file))
}
// A tap run that failed without recording a single failed assertion (a crash, a timeout) still fails.
if (!tapOk && failed === 0) failed++
if (counted === 0) failed++

process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`)
process.exitCode = failed === 0 ? 0 : 1

/** Counts the leaf assertions of a file, at any depth; a subtest's own closing line is not one. */
function countAssertions (parser: Parser): void {
  parser.on('assert', (result: Result) => {
    if (result.closingTestPoint) return
    counted++
    if (result.skip !== false || result.todo !== false) {
      skipped++
      return
    }
    if (result.ok) passed++
    else failed++
  })
  parser.on('child', countAssertions)
}

function listFiles (dir: string, suffix: string): string[] {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true })
  } catch {
    return []
  }
  return entries.filter((e) => e.isFile() && e.name.endsWith(suffix)).map((e) => join(e.parentPath, e.name))
}
