import { spawn, type ChildProcess } from 'node:child_process'
import type { Test } from 'tap'

export interface CliRun {
  /** Everything it printed so far, stdout and stderr together. */
  output: () => string
  exited: Promise<number | null>
  child: ChildProcess
}

/**
 * Runs one of the project's commands (a .ts entry) as a user would, without colour. When the
 * test ends it gets SIGTERM first, so it stops the processes it started, and SIGKILL only if it
 * hangs: killing a launcher outright would orphan its cluster.
 */
export function runCli (t: Test, entry: string, args: string[], env: Record<string, string | undefined> = process.env, wrapper: readonly string[] = []): CliRun {
  // `wrapper` runs the command through another (e.g. setpriv, to drop a privilege).
  const argv = [...wrapper, process.execPath, entry, ...args]
  const child = spawn(argv[0] as string, argv.slice(1), { env: { ...env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    await exited
    clearTimeout(timer)
  })
  return { output: () => output, exited, child }
}

/** Waits until the command has printed `text`, or fails with what it did print. */
export async function waitForOutput (run: CliRun, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!run.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`did not print "${text}"; got:\n${run.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * `npm start -- ARGS` as a user runs it in a terminal, detached so that npm leads a process group
 * of its own: the test signals the whole group (`process.kill(-group, 'SIGINT')`) as a terminal's
 * Ctrl-C would. When the test ends the group gets SIGTERM, then SIGKILL if it hangs.
 */
export function npmStartInGroup (t: Test, cwd: string, args: string[], env: Record<string, string | undefined> = process.env): CliRun & { group: number } {
  const child = spawn('npm', ['start', '--', ...args], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, NO_COLOR: '1' } })
  const group = child.pid as number
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    try { process.kill(-group, 'SIGTERM') } catch {}
    const timer = setTimeout(() => { try { process.kill(-group, 'SIGKILL') } catch {} }, 30_000)
    await exited
    clearTimeout(timer)
  })
  return { output: () => output, exited, child, group }
}
