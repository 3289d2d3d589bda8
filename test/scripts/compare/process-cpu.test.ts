import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { processCpuSeconds, processTreeCpuSeconds } from '../../../scripts/compare/process-cpu.ts'

t.test('reads a live process\'s CPU time from /proc, and it grows as the process works', { skip: process.platform !== 'linux' ? 'reads /proc: Linux only' : false }, async (t) => {
  const before = processCpuSeconds(process.pid)
  t.type(before, 'number')
  const until = performance.now() + 300
  while (performance.now() < until) Math.sqrt(Math.random())
  const after = processCpuSeconds(process.pid) as number
  t.ok(after > (before as number), `${before} s, then ${after} s`)
  const own = process.cpuUsage()
  t.ok(Math.abs(after - (own.user + own.system) / 1e6) < 0.5, 'agrees with process.cpuUsage() to within clock ticks')
})

t.test('a process that is not there, or no pid, is undefined', async (t) => {
  t.equal(processCpuSeconds(undefined), undefined)
  t.equal(processCpuSeconds(2 ** 22 + 12345), undefined)
})

t.test('a process tree\'s CPU: the parent\'s and its live children\'s (PostgreSQL\'s backends are children of the postmaster)', { skip: process.platform !== 'linux' ? 'reads /proc: Linux only' : false }, async (t) => {
  // A child that burns 400 ms of CPU, says so, then waits to be killed: its time is only in its own /proc entry.
  const child = spawn(process.execPath, ['-e', 'const u = performance.now() + 400; while (performance.now() < u) Math.sqrt(Math.random()); console.log("done"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  await once(child.stdout, 'data')
  const own = processCpuSeconds(process.pid) as number
  const childCpu = processCpuSeconds(child.pid) as number
  const tree = processTreeCpuSeconds(process.pid) as number
  t.ok(childCpu >= 0.2, `the child used ${childCpu} s`)
  t.ok(tree >= own + childCpu - 0.02, `tree ${tree} s >= own ${own} s + child ${childCpu} s`)
  t.equal(processTreeCpuSeconds(undefined), undefined)
  t.equal(processTreeCpuSeconds(2 ** 22 + 12345), undefined, 'a process that is not there')
})
