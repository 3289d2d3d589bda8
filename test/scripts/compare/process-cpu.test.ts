import t from 'tap'
import { processCpuSeconds } from '../../../scripts/compare/process-cpu.ts'

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
