import { readFileSync } from 'node:fs'

/**
 * A running process's environment as an intruder on its machine reads it: /proc/PID/environ on
 * Linux (what the kernel holds for it, whatever the launcher meant to give). Elsewhere, the
 * environment the launcher started it with, which is the same thing by another route.
 */
export function environmentOf (proc: { pid: number | undefined, env: Readonly<Record<string, string>> }): { env: Record<string, string>, source: string } {
  const { pid } = proc
  if (pid === undefined) throw new Error('the process is not running')
  try {
    const entries = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((e) => e.includes('='))
    return { env: Object.fromEntries(entries.map((e): [string, string] => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])), source: `/proc/${pid}/environ` }
  } catch {
    return { env: { ...proc.env }, source: 'the environment it was started with' }
  }
}
