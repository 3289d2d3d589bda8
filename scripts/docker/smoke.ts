// npm run test:docker's toolkit: running a command within the run's deadline, the checks and
// their summary, and HTTP with a timeout. Here and not in scripts/lib: nothing in it belongs in
// the image (.dockerignore leaves scripts/docker/ out).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { styleText } from 'node:util'

export const root = fileURLToPath(new URL('../..', import.meta.url))
// The checks stop at this deadline (default 13 minutes), leaving time to tear down within the
// 15 minutes .ci/run gives the whole smoke test.
export const DEADLINE = Date.now() + Number(process.env.TEST_DOCKER_BUDGET_S ?? 780) * 1000

/** Why the smoke test cannot run here (no engine, no Compose, no base images): SKIPPED, never passed. */
export class Skip extends Error {}

// ---- running commands ---------------------------------------------------------------------

export interface Run { code: number, stdout: string, stderr: string }
export interface RunOptions {
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
  echo?: boolean
  /** Teardown gets its own timeout even past the deadline: it must always run. */
  pastDeadline?: boolean
}

export const running = new Set<ReturnType<typeof spawn>>()

export function log (line: string): void {
  process.stdout.write(`${line}\n`)
}

/** Runs a command to completion (or its timeout); never rejects. */
export function run (command: string, args: string[], options: RunOptions = {}): Promise<Run> {
  const wanted = options.timeoutMs ?? 120_000
  const timeoutMs = options.pastDeadline === true ? wanted : Math.max(1000, Math.min(wanted, DEADLINE - Date.now()))
  if (options.echo !== false) log(styleText('dim', `$ ${[command, ...args].join(' ')}`))
  return new Promise((resolve) => {
    let stdout = ''
    let stderr = ''
    const child = spawn(command, args, { cwd: root, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(child)
    const timer = setTimeout(() => {
      stderr += `\n(timed out after ${Math.round(timeoutMs / 1000)} s)`
      child.kill('SIGTERM')
      setTimeout(() => child.kill('SIGKILL'), 5000).unref()
    }, timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    child.on('error', (err) => { stderr += err.message })
    child.on('close', (code) => {
      clearTimeout(timer)
      running.delete(child)
      resolve({ code: code ?? 1, stdout, stderr })
    })
  })
}

export function tail (text: string, lines = 15): string {
  return text.trim().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n')
}

// ---- checks -------------------------------------------------------------------------------

export const outcomes: Array<{ name: string, ok: boolean }> = []
export const notes: string[] = []

const startedAt = Date.now()

export function check (name: string, ok: boolean, detail = ''): boolean {
  outcomes.push({ name, ok })
  const elapsed = Math.round((Date.now() - startedAt) / 1000)
  const clock = `${Math.floor(elapsed / 60)}:${String(elapsed % 60).padStart(2, '0')}`
  log(`${ok ? styleText('green', '✓') : styleText('red', '✗')} ${styleText('dim', clock)} ${name}${ok || detail === '' ? '' : `\n    ${detail}`}`)
  return ok
}

export function loud (text: string): void {
  const line = '#'.repeat(76)
  log(`\n${line}\n${text.split('\n').map((l) => `#  ${l}`).join('\n')}\n${line}\n`)
}

// ---- HTTP ---------------------------------------------------------------------------------

export interface Reply { status: number, servedBy: string, body: Record<string, unknown>, headers: Headers }

export async function http (url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  let body: Record<string, unknown> = {}
  try {
    body = text === '' ? {} : JSON.parse(text)
  } catch {
    body = { text }
  }
  return { status: res.status, servedBy: res.headers.get('x-served-by') ?? '', body, headers: res.headers }
}

export async function waitFor (what: string, test: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Math.min(Date.now() + timeoutMs, DEADLINE)
  while (Date.now() < until) {
    try {
      if (await test()) return true
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  log(`    (gave up waiting for ${what})`)
  return false
}
