import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/**
 * A process's children, found by their parent's pid. PostgreSQL's backends and background
 * workers each call setsid(), so they are not in the postmaster's process group and a signal to
 * the group misses them (postgres-process.ts); their CPU is read one by one (compare).
 */
export function childrenOf (pid: number): number[] {
  try {
    return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).filter((name) => {
      try {
        // /proc/<pid>/stat: pid (comm) state ppid ...; comm may hold spaces and parentheses.
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid
      } catch {
        return false
      }
    }).map(Number)
  } catch {
    // No /proc (macOS): ask pgrep.
    const found = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
    return found.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number)
  }
}
