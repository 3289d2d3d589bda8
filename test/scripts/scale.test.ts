import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { runCli } from '../helpers/cli.ts'

const ENTRY = fileURLToPath(new URL('../../scripts/scale.ts', import.meta.url))
// A compare JSON of the 2-core machine, trimmed to what scale reads (test/fixtures/README.md).
const FIXTURE = fileURLToPath(new URL('../fixtures/compare-2-cores.json', import.meta.url))
const MODES = ['memory', 'redis', 'postgres', 'jwt', 'jwt-revocation', 'cookie']

async function scale (t: Test, ...args: string[]): Promise<{ code: number | null, output: string }> {
  const run = runCli(t, ENTRY, args)
  const code = await run.exited
  return { code, output: run.output() }
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'scale-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

interface PlanJson { target: { rps: number, sessions: number }, plans: Array<{ name: string, appCores: number, first: { kind: string, rps: number | null }, firstShared: { kind: string } | null, redis: { usPerCommandFrom: string } | null, postgres: { usPerRequestFrom: string } | null }> }

t.test('a compare JSON to a plan per mode: the tables, where each stops, the assumptions, and --json', async (t) => {
  const out = join(tempDir(t), 'plan', 'scale.json')
  const { code, output } = await scale(t, '--from', FIXTURE, '--json', out)
  t.equal(code, 0, output)
  t.match(output, 'What each mode needs at 100,000 req/s and 10,000,000 live sessions, each core planned 65% busy.')
  t.match(output, /from .*compare-2-cores\.json \(2 cores, load average [\d.]+ at the start, 3 runs per mode, /, 'which machine and run the figures are from')
  for (const title of ['App servers, balancer and network', 'The store each request asks', 'Where each mode stops scaling', 'Measured on this machine (from the JSON)', 'Assumed (not in the JSON; each a flag)']) t.match(output, title)
  for (const mode of MODES) t.match(output, new RegExp(`^ {2}- ${mode.replace('+', '\\+')}: .* fills first, at [\\d,]+ req/s`, 'm'), `${mode}: where it stops, in words`)
  t.match(output, /--utilisation 0\.65 of a core: headroom/)

  const plan = JSON.parse(readFileSync(out, 'utf8')) as PlanJson
  t.same(plan.target, { rps: 100_000, sessions: 10_000_000 })
  t.same(plan.plans.map((p) => p.name), MODES)
  const byName = Object.fromEntries(plan.plans.map((p) => [p.name, p]))
  const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { results: Array<{ mode: string, cpuUsPerRequest: number }> }
  for (const r of fixture.results) {
    t.equal(byName[r.mode]?.appCores, Math.ceil(100_000 * r.cpuUsPerRequest / 1e6 / 0.65), `${r.mode}: app-server cores = 100,000 × ${r.cpuUsPerRequest.toFixed(1)} µs / 0.65`)
  }
  t.equal(byName.redis?.firstShared?.kind, 'store thread', 'redis\'s shared state stops at its one command thread')
  t.equal(byName['jwt-revocation']?.firstShared?.kind, 'store thread', 'and so does the revocation list')
  t.equal(byName.postgres?.firstShared?.kind, 'database primary', 'postgres at its primary')
  t.equal(byName.jwt?.firstShared, null, 'jwt shares nothing')
  t.equal(byName.cookie?.firstShared, null, 'nor does cookie')
  t.equal(byName.memory?.first.kind, 'one app server', 'memory cannot scale out without sticky routing')
  t.match(output, /^ {2}- jwt: .*Nothing shared fills/m)
  t.equal(byName.redis?.redis?.usPerCommandFrom, 'measured', 'the fixture has Redis\'s CPU: no assumption')
  t.equal(byName.postgres?.postgres?.usPerRequestFrom, 'measured', 'and PostgreSQL\'s')
  t.match(output, `JSON: ${out}`)
})

t.test('a small target fits one of each unit: "within one" everywhere', async (t) => {
  const { code, output } = await scale(t, '--from', FIXTURE, '--rps', '500', '--sessions', '10000')
  t.equal(code, 0, output)
  const rows = output.split('\n').filter((line) => MODES.some((m) => line.startsWith(`${m} `)) && /(within one|past it)$/.test(line))
  t.equal(rows.length, MODES.length, output)
  t.ok(rows.every((row) => row.endsWith('within one')), rows.join('\n'))
})

t.test('bad input: a message and exit 2, no table', async (t) => {
  const dir = tempDir(t)
  const write = (name: string, content: string): string => { const file = join(dir, name); writeFileSync(file, content); return file }
  const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { results: Array<Record<string, unknown>> }
  const negative = structuredClone(fixture)
  ;(negative.results[1] as Record<string, unknown>).storeCommandsPerRequest = -1
  const cases: Array<[string, string[], RegExp]> = [
    ['a file that is not there', ['--from', join(dir, 'nothing.json')], /npm run scale: cannot read .*nothing\.json: ENOENT/],
    ['not JSON', ['--from', write('bad.json', '{"config": ')], /npm run scale: .*bad\.json: not JSON/],
    ['another JSON', ['--from', write('other.json', '{"name":"auth-cluster"}')], /not a compare report/],
    ['a capacity report', ['--from', write('capacity.json', JSON.stringify({ config: { sloP99Ms: 10 }, results: [{ mode: 'redis', capacity: {} }] }))], /a capacity report \(npm run compare -- --slo-p99-ms\)/],
    ['a negative figure', ['--from', write('negative.json', JSON.stringify(negative))], /redis's storeCommandsPerRequest is -1: store round trips per request cannot be negative/],
    ['no --from', [], /--from FILE is required[\s\S]*Usage: npm run scale/],
    ['a negative target', ['--from', FIXTURE, '--rps', '-100'], /--rps must be a number at least 1 \(got "-100"\)[\s\S]*Usage: npm run scale/],
    ['a negative assumption', ['--from', FIXTURE, '--nic-gbit', '-1'], /--nic-gbit must be a number at least 0\.01 \(got "-1"\)/]
  ]
  for (const [what, args, message] of cases) {
    const { code, output } = await scale(t, ...args)
    t.equal(code, 2, `${what}: exit 2`)
    t.match(output, message, what)
    t.notMatch(output, 'What each mode needs', `${what}: no table`)
    t.notMatch(output, /\n\s+at /, `${what}: no stack trace`)
  }
})

t.test('--help: the usage, every assumption\'s flag, exit 0', async (t) => {
  const { code, output } = await scale(t, '--help')
  t.equal(code, 0)
  for (const flag of ['--from FILE', '--rps N', '--sessions N', '--json OUT', '--utilisation N', '--redis-us-per-command N', '--pg-us-per-statement N', '--logout-share N']) t.match(output, flag)
})
