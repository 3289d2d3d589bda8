import { FALLBACK_REDIS_ENTRY_BYTES, type Assumptions } from './assumptions.ts'
import type { MeasuredMode } from './read-compare.ts'

/** Where a figure came from: the compare JSON (this machine), or an assumption (a flag's value). */
export type Source = 'measured' | 'assumed'

export interface ScaleTarget {
  rps: number
  /** Live sessions (in the stateless modes: live tokens). */
  sessions: number
}

/** One Redis tier: the session store, the revocation list, or a cache in front of PostgreSQL. */
export interface RedisPlan {
  role: 'sessions' | 'revocation list' | 'cache'
  commandsPerRequest: number
  usPerCommand: number
  usPerCommandFrom: Source
  /** Commands per second at the target. */
  opsPerSecond: number
  /** What one node's one command thread does at the planned utilisation. */
  opsPerNode: number
  entries: number
  bytesPerEntry: number
  bytesPerEntryFrom: Source
  /** entries × bytes, one copy. */
  dataBytes: number
  /** Entries one node holds in the memory assumed. */
  entriesPerNode: number
  primariesByOps: number
  primariesByMemory: number
  primaries: number
  /** Primaries and their replicas. */
  nodes: number
  /** Every copy. */
  memoryBytes: number
}

export interface PostgresPlan {
  statementsPerRequest: number
  /** The database's CPU per request, µs: the postmaster and its backends, background work included. */
  usPerRequest: number
  usPerRequestFrom: Source
  /** usPerRequest / statementsPerRequest; null when there are no statements. */
  usPerStatement: number | null
  statementsPerSecond: number
  /** Cores the database needs at the target, at the planned utilisation. */
  cores: number
  /** Statements per second one core does (1e6 / µs per statement). */
  statementsPerCore: number | null
  /** The sessions table and its indexes, one copy. */
  dataBytes: number
  /** Primary and replicas. */
  memoryBytes: number
}

const ceil = (n: number): number => Number.isFinite(n) ? Math.max(0, Math.ceil(n - 1e-9)) : Number.POSITIVE_INFINITY

/**
 * A Redis tier for `mode` at the target, or null when its requests ask no Redis. Redis runs every
 * command on one thread: a node's ceiling is utilisation / (its CPU per command), and more load
 * needs more primaries (Redis Cluster: sessions sharded by key). Every command here writes or
 * must be current (GETEX renews the idle timeout; a revocation must hold at once), so replicas
 * add copies for failover, not read capacity.
 */
export function planRedis (m: MeasuredMode, target: ScaleTarget, a: Assumptions, redisBytesPerSession: number | null): RedisPlan | null {
  const role: RedisPlan['role'] | null = m.mode === 'redis' ? 'sessions' : m.mode === 'jwt-revocation' ? 'revocation list' : m.cacheCommandsPerRequest > 0 ? 'cache' : null
  if (role === null) return null
  const commandsPerRequest = role === 'cache' ? m.cacheCommandsPerRequest : m.storeTripsPerRequest
  const measured = m.redisUsPerRequest !== null && commandsPerRequest > 0 ? m.redisUsPerRequest / commandsPerRequest : null
  const usPerCommand = measured ?? a.redisUsPerCommand
  const opsPerSecond = target.rps * commandsPerRequest
  const opsPerNode = a.utilisation * 1e6 / usPerCommand

  // redis mode weighed its own entries; the revocation list's and a cache's were not weighed.
  const weighed = role === 'sessions'
  const entryBytes = weighed ? m.bytesPerSession : a.redisEntryBytes ?? redisBytesPerSession ?? FALLBACK_REDIS_ENTRY_BYTES
  const entryFrom: Source = weighed || (a.redisEntryBytes === null && redisBytesPerSession !== null) ? 'measured' : 'assumed'
  // A revocation entry lives until its token's exp: about logoutShare of the live tokens at once.
  const entries = role === 'revocation list' ? target.sessions * a.logoutShare : target.sessions
  const dataBytes = entries * entryBytes
  const nodeBytes = a.storeMemoryGb * 1e9
  const primariesByOps = ceil(opsPerSecond / opsPerNode)
  const primariesByMemory = ceil(dataBytes / nodeBytes)
  const primaries = Math.max(1, primariesByOps, primariesByMemory)
  return {
    role,
    commandsPerRequest,
    usPerCommand,
    usPerCommandFrom: measured === null ? 'assumed' : 'measured',
    opsPerSecond,
    opsPerNode,
    entries,
    bytesPerEntry: entryBytes,
    bytesPerEntryFrom: entryFrom,
    dataBytes,
    entriesPerNode: entryBytes > 0 ? nodeBytes / entryBytes : Number.POSITIVE_INFINITY,
    primariesByOps,
    primariesByMemory,
    primaries,
    nodes: primaries * (1 + a.replicas),
    memoryBytes: dataBytes * (1 + a.replicas)
  }
}

/**
 * The PostgreSQL behind the postgres modes at the target, or null for the others. Its CPU per
 * request is measured where the JSON has it (every process of the server, so background work is
 * in it too); else statements × the assumed µs per statement.
 */
export function planPostgres (m: MeasuredMode, target: ScaleTarget, a: Assumptions): PostgresPlan | null {
  if (m.store !== 'postgres') return null
  const statements = m.storeTripsPerRequest
  const measured = m.postgresUsPerRequest
  const usPerRequest = measured ?? statements * a.pgUsPerStatement
  const usPerStatement = statements > 0 ? usPerRequest / statements : null
  const dataBytes = target.sessions * m.bytesPerSession
  return {
    statementsPerRequest: statements,
    usPerRequest,
    usPerRequestFrom: measured === null ? 'assumed' : 'measured',
    usPerStatement,
    statementsPerSecond: target.rps * statements,
    cores: target.rps * usPerRequest / 1e6 / a.utilisation,
    statementsPerCore: usPerStatement === null || usPerStatement === 0 ? null : 1e6 / usPerStatement,
    dataBytes,
    memoryBytes: dataBytes * (1 + a.replicas)
  }
}
