import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { childrenOf } from '../lib/process-children.ts'

// Linux reports utime and stime in clock ticks; USER_HZ is 100 on every Linux build that matters here.
const TICKS_PER_SECOND = 100

/**
 * CPU seconds (user + system) a process has used so far, read from /proc/<pid>/stat;
 * undefined where there is no /proc (not Linux) or the process is gone. This is how the
 * balancer's CPU is seen: it has no /metrics of its own.
 */
export function processCpuSeconds (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined
  return (utime + stime) / TICKS_PER_SECOND
}

/**
 * CPU seconds of a PostgreSQL server: the postmaster and every child it has now (a backend per
 * connection, the background workers). A child's time reaches the postmaster's own count only
 * when it exits, so the live children are read one by one; a backend that ends between two
 * readings takes its time with it (the app servers' pooled connections stay open through a run).
 */
export function processTreeCpuSeconds (pid: number | undefined): number | undefined {
  const own = processCpuSeconds(pid)
  if (own === undefined || pid === undefined) return undefined
  return childrenOf(pid).reduce((sum, child) => sum + (processCpuSeconds(child) ?? 0), own)
}

/**
 * The machine's CPU time so far, busy and in all, in the same unit. /proc/stat where there is one:
 * os.cpus() leaves out softirq (much of loopback networking's kernel work) and steal (time a
 * virtual machine's host gave to another guest), and both are time our processes could not run.
 */
export function machineTimes (): { busy: number, total: number } {
  try {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
    const fields = [user, nice, system, idle, iowait, irq, softirq, steal]
    if (fields.every((f) => f !== undefined && Number.isFinite(f))) {
      const [u, n, sy, id, io, ir, so, st] = fields as number[]
      const busy = (u as number) + (n as number) + (sy as number) + (ir as number) + (so as number) + (st as number)
      return { busy, total: busy + (id as number) + (io as number) }
    }
  } catch {
    // Not Linux: what os.cpus() says.
  }
  let busy = 0
  let total = 0
  for (const cpu of cpus()) {
    const { user, nice, sys, idle, irq } = cpu.times
    busy += user + nice + sys + irq
    total += user + nice + sys + idle + irq
  }
  return { busy, total }
}
