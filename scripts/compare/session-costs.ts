import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { CredentialSizes, MemorySessionCost, PostgresSessionCost, RedisSessionCost } from './session-memory.ts'

const ENTRY = fileURLToPath(new URL('./session-memory-process.ts', import.meta.url))

export interface SessionCosts {
  /** null when not asked for. */
  memory: MemorySessionCost | null
  redis: RedisSessionCost | null
  postgres: PostgresSessionCost | null
  credentials: CredentialSizes
}

/**
 * Runs the session memory measurement in a child process of its own (with --expose-gc, and
 * nothing else in its heap) and returns what it found. redisUrl: an empty Redis to fill;
 * databaseUrl: an empty PostgreSQL database to fill.
 */
export async function measureSessionCosts (sessions: number, what: { memory: boolean, redisUrl?: string, databaseUrl?: string }): Promise<SessionCosts> {
  const args = ['--expose-gc', ENTRY, '--sessions', String(sessions)]
  if (what.memory) args.push('--memory')
  if (what.redisUrl !== undefined) args.push('--redis', what.redisUrl)
  if (what.databaseUrl !== undefined) args.push('--postgres', what.databaseUrl)
  const running = promisify(execFile)(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    timeout: 300_000,
    maxBuffer: 1024 * 1024
  })
  // If compare is stopped (Ctrl-C) mid-measurement, the measurement goes with it.
  const kill = (): void => { running.child.kill('SIGKILL') }
  process.once('exit', kill)
  try {
    const { stdout } = await running
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as SessionCosts
  } finally {
    process.removeListener('exit', kill)
  }
}
