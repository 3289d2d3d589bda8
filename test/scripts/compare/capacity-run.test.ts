import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { CapacityReport } from '../../../scripts/compare/capacity.ts'
import { parseCompareArgs, UsageError } from '../../../scripts/compare/options.ts'

const COMPARE = fileURLToPath(new URL('../../../scripts/compare.ts', import.meta.url))
// Two clusters start one after the other: on a busy machine that alone can take half a minute.
t.setTimeout(120_000)

t.test('--slo-p99-ms and its step settings are read, and what cannot go with it is refused', async (t) => {
  t.match(parseCompareArgs([]), { sloP99Ms: null, startRps: 500, maxRps: 64000, stepSeconds: 1.5 })
  t.match(parseCompareArgs(['--slo-p99-ms', '2.5', '--start-rps', '100', '--max-rps', '800', '--step-seconds', '0.5']), { sloP99Ms: 2.5, startRps: 100, maxRps: 800, stepSeconds: 0.5 })
  for (const [args, message] of [
    [['--slo-p99-ms', '0'], /--slo-p99-ms must be a number of milliseconds above 0/],
    [['--slo-p99-ms', 'ten'], /--slo-p99-ms must be/],
    [['--slo-p99-ms', '10', '--start-rps', '900', '--max-rps', '800'], /--start-rps \(900\) is above --max-rps \(800\)/],
    [['--slo-p99-ms', '10', '--sweep', 'servers=1..2'], /cannot be used with --sweep/],
    [['--slo-p99-ms', '10', '--runs', '3'], /cannot be used with --runs/],
    [['--step-seconds', '0.1'], /--step-seconds must be a number of seconds from 0.2 to 60/]
  ] as const) {
    t.throws(() => parseCompareArgs([...args]), { name: UsageError.name, message }, args.join(' '))
  }
})

t.test('npm run compare -- --slo-p99-ms: a capacity per mode, in the contract\'s JSON, the text and the HTML', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'capacity-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const json = join(dir, 'capacity.json')
  const html = join(dir, 'capacity.html')
  // Tiny steps, and a target any cluster meets at 400 req/s: the whole ladder holds, up to --max-rps.
  // 5 connections over 2 servers: not a multiple, so memory's refusals cannot lock in step with the round robin.
  const args = ['--slo-p99-ms', '1000', '--modes', 'memory,jwt', '--servers', '2', '--connections', '5',
    '--start-rps', '100', '--max-rps', '400', '--step-seconds', '0.5', '--json', json, '--html', html]
  const child = spawn(process.execPath, [COMPARE, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  t.teardown(() => { child.kill('SIGKILL') })
  const started = performance.now()
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.equal(code, 0, `exits 0${code === 0 ? '' : `: ${stderr}`}`)
  t.comment(`took ${((performance.now() - started) / 1000).toFixed(1)} s`)

  const report = JSON.parse(readFileSync(json, 'utf8')) as CapacityReport
  t.match(report.config, { sloP99Ms: 1000, servers: 2, connections: 5, durationSeconds: 0.5, startRps: 100, maxRps: 400 })
  t.same(report.results.map((r) => r.mode), ['memory', 'jwt'], 'one entry per mode')
  for (const r of report.results) {
    t.match(r, { requests: Number, rps: Number, latencyMs: { p50: Number, p90: Number, p99: Number }, ok: Number, unauthorized: Number, errors: Number, authFailureRate: Number, perServer: Object }, `${r.mode}: the contract's fields`)
    const k = r.capacity
    const words = k.steps.map((s) => `${s.offeredRps}: ${s.why.join('; ') || 'held'}${s.generatorBehind ? ' (generator behind)' : ''}`).join(' | ')
    t.comment(`${r.mode}: ${words}`)
    t.ok(k.steps.every((s) => s.held === (s.why.length === 0)), `${r.mode}: a step held exactly when nothing was wrong with it`)
    const climb = [...new Set(k.steps.filter((s) => s.phase === 'climb').map((s) => s.offeredRps))] // a step measured again appears twice
    t.same(climb, [100, 200, 400].slice(0, climb.length), `${r.mode}: x2 from --start-rps, at most --max-rps`)
    const heldRates = k.steps.filter((s) => s.held).map((s) => s.offeredRps)
    t.equal(k.heldRps, heldRates.length === 0 ? null : Math.max(...heldRates), `${r.mode}: the capacity is the highest rate that held`)
    // A target any cluster meets at 400 req/s, unless the machine is too busy for the generator to keep its schedule.
    if (!k.steps.some((s) => s.generatorBehind)) {
      t.same([k.heldRps, k.failedRps, k.limitedBy, climb], [400, null, 'max-rps', [100, 200, 400]], `${r.mode}: every step held, up to --max-rps`)
    }
    const at = k.steps.find((s) => s.held && s.offeredRps === k.heldRps) ?? k.steps[0]
    t.equal(r.rps, at?.achievedRps, 'the contract\'s figures are those of the step at capacity')
    const served = Object.values(r.perServer).reduce((n, p) => n + p.ok + p.unauthorized, 0)
    t.equal(served, r.ok + r.unauthorized, `${r.mode}: the servers counted what the client got`)
    if (k.heldRps !== null) {
      t.ok((k.cpuUsPerRequest.servers ?? 0) > 0 && (k.cpuUsPerRequest.balancer ?? 0) > 0, `${r.mode}: CPU per request of the servers and the balancer, seen`)
      t.equal(k.cpuUsPerRequest.store, null, 'no store in memory or jwt mode')
      t.ok((k.rpsPerServerCore ?? 0) > 0)
    }
  }
  const memory = report.results[0]
  t.ok(memory !== undefined && Math.abs(memory.authFailureRate - 0.5) < 0.15, `memory behind 2 servers refuses about half, by design (${memory?.authFailureRate.toFixed(3)}), and that still holds`)
  t.equal(report.results[1]?.unauthorized, 0, 'jwt refuses no one')

  t.match(stdout, /Capacity at p99 <= 1000 ms/)
  t.match(stdout, /Every step, in the order measured/)
  t.match(stdout, /In plain words:\n {2}- memory: /)
  const page = readFileSync(html, 'utf8')
  t.match(page, /<svg/)
  t.match(page, /target: p99 1000 ms/)

  // The saved JSON renders again, as the same kind of report.
  const again = spawn(process.execPath, [COMPARE, '--from', json], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] })
  let reprinted = ''
  again.stdout.on('data', (c: Buffer) => { reprinted += c.toString() })
  t.equal(await new Promise<number | null>((resolve) => again.once('exit', resolve)), 0)
  t.match(reprinted, /Capacity at p99 <= 1000 ms/)
})
