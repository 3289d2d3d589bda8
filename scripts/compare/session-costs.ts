import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { LogSink } from '../lib/managed-process.ts'
import { REDIS_MISSING } from '../lib/redis-process.ts'
import type { CompareMode } from './modes.ts'
import { startPrivatePostgres } from './private-postgres.ts'
import { startPrivateRedis } from './private-redis.ts'
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

/** What a session weighs in each mode: on the server side, and on the wire. */
export interface MemoryCost {
  /** Bytes of the credential the client sends on every request. */
  credentialBytes: number | null
  /** Bytes of server-side state per session; 0 for the modes that keep none, null when not measured. */
  bytesPerSession: number | null
  /** Where those bytes live and how they were measured. */
  measuredAs: string
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
const firstLine = (err: unknown): string => (err as Error).message.split('\n')[0] ?? ''

/**
 * The session costs of the modes compare runs, in a child process of its own, with an empty Redis
 * and an empty PostgreSQL of their own to fill (never the clusters'). What cannot be measured
 * here (no redis-server, no PostgreSQL) becomes a note, and the rest is still measured.
 */
export async function measureCostsOfModes (sessions: number, modes: readonly string[], step: (text: string) => void, notes: string[], onLog?: LogSink): Promise<SessionCosts | null> {
  const t0 = performance.now()
  const stops: Array<() => Promise<void>> = []
  let redisUrl: string | undefined
  let databaseUrl: string | undefined
  if (modes.includes('redis') && sessions > 0) {
    try {
      const redis = await startPrivateRedis({ onLog })
      redisUrl = redis.directUrl
      stops.push(redis.stop)
    } catch (err) {
      notes.push(`Redis bytes per session not measured: ${(err as Error).message === REDIS_MISSING ? 'no redis-server here' : firstLine(err)}`)
    }
  }
  if (modes.includes('postgres') && sessions > 0) {
    try {
      const postgres = await startPrivatePostgres({ onLog })
      databaseUrl = postgres.directUrl
      stops.push(postgres.stop)
    } catch (err) {
      notes.push(`PostgreSQL bytes per session not measured: ${firstLine(err)}`)
    }
  }
  try {
    const costs = await measureSessionCosts(sessions, { memory: sessions > 0 && modes.includes('memory'), redisUrl, databaseUrl })
    if (sessions > 0) step(`state per session measured (${fmt(sessions)} sessions${databaseUrl !== undefined ? ', PostgreSQL\'s too' : ''}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    return costs
  } catch (err) {
    notes.push(`state per session not measured: ${firstLine(err)}`)
    return null
  } finally {
    await Promise.all(stops.map(async (stop) => { await stop() }))
  }
}

/**
 * A mode's entry for the report. credentialBytes: the mean size of the credentials this run's
 * logins got, which is the only way to weigh the ones an issuer or a sealed cookie make.
 */
export function memoryCostOf (mode: CompareMode, costs: SessionCosts | null, loggedIn: number | null = null): MemoryCost {
  const sessionId = costs?.credentials.sessionIdBytes ?? loggedIn
  switch (mode) {
    case 'memory':
      return {
        credentialBytes: sessionId,
        bytesPerSession: costs?.memory?.bytesPerSession ?? null,
        measuredAs: costs?.memory != null
          ? `V8 heap growth (after full GC) of one process holding ${fmt(costs.memory.sessions)} sessions made by the memory authenticator, on the one server that issued each`
          : 'not measured'
      }
    case 'redis':
      return {
        credentialBytes: sessionId,
        bytesPerSession: costs?.redis?.bytesPerSession ?? null,
        measuredAs: costs?.redis != null
          ? `Redis used_memory growth after ${fmt(costs.redis.sessions)} SET session:<id> <user> EX <ttl> by the redis authenticator, shared by every server`
          : 'not measured'
      }
    case 'postgres':
    case 'postgres+redis-cache':
    case 'postgres+local-cache':
      return {
        credentialBytes: sessionId,
        bytesPerSession: costs?.postgres?.bytesPerSession ?? null,
        measuredAs: costs?.postgres != null
          ? `PostgreSQL's sessions table and its indexes (pg_total_relation_size after VACUUM) grown by ${fmt(costs.postgres.sessions)} INSERTs of the postgres authenticator: ${fmt(costs.postgres.tableBytes)} B of rows, ${fmt(costs.postgres.indexBytes)} B of index` +
            (mode === 'postgres' ? '' : '; the cache\'s entries come on top, in Redis or in each server\'s heap')
          : mode === 'postgres' ? 'not measured' : 'measured in the postgres row (--modes with postgres); the cache\'s entries come on top'
      }
    case 'jwt':
    case 'jwt-eddsa':
      return {
        credentialBytes: mode === 'jwt' ? costs?.credentials.jwtBytes ?? loggedIn : loggedIn,
        bytesPerSession: 0,
        measuredAs: mode === 'jwt'
          ? 'nothing is stored: the token carries the claims, signed'
          : 'nothing the app servers read: the token carries the claims, signed by the issuer (whose Redis keeps one refresh-token family per login)'
      }
    case 'jwt-revocation':
      return {
        credentialBytes: costs?.credentials.jwtBytes ?? loggedIn,
        bytesPerSession: 0,
        measuredAs: 'nothing per live session; each logout keeps the token\'s jti in Redis until its exp'
      }
    case 'cookie':
      return {
        credentialBytes: loggedIn,
        bytesPerSession: 0,
        measuredAs: 'nothing is stored: the cookie carries the session, sealed (encrypted and authenticated) with the servers\' key; the credential is the sealed value /login returned'
      }
  }
}
