import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/** Every live process below `root` (at any depth), from /proc: what a launcher left running. */
export function descendants (root: number): Array<{ pid: number, cmdline: string }> {
  const parentOf = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // The fields after the command, which is in parentheses and may hold spaces: state, ppid, ...
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const below = (pid: number): boolean => {
    for (let p = parentOf.get(pid); p !== undefined && p > 1; p = parentOf.get(p)) if (p === root) return true
    return false
  }
  return [...parentOf.keys()].filter(below).map((pid) => {
    let cmdline = ''
    try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ') } catch {}
    return { pid, cmdline }
  })
}

export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Whether nothing listens on the port any more: it can be bound again. */
export async function portClosed (port: number): Promise<boolean> {
  const probe = createServer()
  return await new Promise((resolve) => {
    probe.once('error', () => { resolve(false) })
    probe.listen(port, '127.0.0.1', () => probe.close(() => { resolve(true) }))
  })
}
