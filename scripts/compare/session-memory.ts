import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { Authenticator, AuthenticatorFactory } from '../../services/auth/authenticator.ts'
import { authenticators } from '../../services/auth/index.ts'
import { loadServerConfig } from '../../services/config.ts'
import { createMetrics } from '../../services/metrics.ts'
import { DEMO_USERS } from '../../services/users.ts'

/**
 * What a session costs in memory, measured through the real authenticators (the same code a
 * server runs, minus HTTP and scrypt: 100k logins over HTTP would take over an hour of scrypt).
 * Run it in a process of its own with --expose-gc (session-memory-process.ts), so the heap
 * holds nothing else that grows.
 */
export interface MemorySessionCost {
  sessions: number
  /** V8 heap in use after a full GC, before and after creating the sessions. */
  heapBefore: number
  heapAfter: number
  bytesPerSession: number
}

export interface RedisSessionCost {
  sessions: number
  /** Redis INFO memory `used_memory`, before and after. */
  usedMemoryBefore: number
  usedMemoryAfter: number
  keys: number
  bytesPerSession: number
}

export interface PostgresSessionCost {
  sessions: number
  /** pg_total_relation_size('sessions'), after VACUUM: the rows, both indexes, TOAST and the free-space and visibility maps. */
  totalBytesBefore: number
  totalBytesAfter: number
  /** Of the growth, the rows (the table's main fork) and the indexes (the id, the idle end). */
  tableBytes: number
  indexBytes: number
  rows: number
  bytesPerSession: number
}

export interface CredentialSizes {
  /** A session id, as sent in memory and redis modes. */
  sessionIdBytes: number
  /** A JWT as /login issues it, as sent in jwt mode. */
  jwtBytes: number
}

const USERS = Object.keys(DEMO_USERS)

async function withAuthenticator<T> (env: Record<string, string>, use: (a: Authenticator) => Promise<T>): Promise<T> {
  const config = loadServerConfig({ SERVER_ID: 'measure', LOG_LEVEL: 'silent', ...env })
  const app = Fastify({ logger: false })
  const factory: AuthenticatorFactory = await authenticators[config.mode]()
  const authenticator = await factory({ config, log: app.log, metrics: createMetrics('measure', config.mode), app })
  try {
    return await use(authenticator)
  } finally {
    await authenticator.close()
    await app.close()
  }
}

function collect (): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('measuring heap growth needs node --expose-gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** Heap growth of one process holding `sessions` memory-mode sessions, per session (Map slack included). */
export async function measureMemorySessions (sessions: number): Promise<MemorySessionCost> {
  return await withAuthenticator({ AUTH_MODE: 'memory' }, async (authenticator) => {
    const size = (authenticator as Authenticator & { size?: () => number }).size
    // Build the Map's code paths and the users first, so only the sessions count.
    await authenticator.login('alice')
    const heapBefore = collect()
    for (let i = 0; i < sessions; i++) await authenticator.login(USERS[i % USERS.length] as string)
    const heapAfter = collect()
    const held = (size?.() ?? sessions + 1) - 1
    if (held !== sessions) throw new Error(`expected ${sessions} sessions in memory, found ${held}`)
    return { sessions, heapBefore, heapAfter, bytesPerSession: (heapAfter - heapBefore) / sessions }
  })
}

async function usedMemory (client: Redis): Promise<number> {
  const info = await client.info('memory')
  const match = /^used_memory:(\d+)/m.exec(info)
  if (match === null) throw new Error('INFO memory has no used_memory')
  return Number(match[1])
}

/**
 * Redis used_memory growth for `sessions` sessions written by the redis authenticator (SET
 * session:<id> <user> EX <ttl>), per session. Give it an empty Redis of its own.
 */
export async function measureRedisSessions (sessions: number, redisUrl: string): Promise<RedisSessionCost> {
  const inspector = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  inspector.on('error', () => {})
  try {
    return await withAuthenticator({ AUTH_MODE: 'redis', REDIS_URL: redisUrl, REDIS_COMMAND_TIMEOUT_MS: '10000' }, async (authenticator) => {
      const keysBefore = await inspector.dbsize()
      const usedMemoryBefore = await usedMemory(inspector)
      const inFlight = 200
      for (let done = 0; done < sessions; done += inFlight) {
        const batch: Array<Promise<unknown>> = []
        for (let i = done; i < Math.min(sessions, done + inFlight); i++) batch.push(authenticator.login(USERS[i % USERS.length] as string))
        await Promise.all(batch)
      }
      const usedMemoryAfter = await usedMemory(inspector)
      const keys = await inspector.dbsize() - keysBefore
      if (keys !== sessions) throw new Error(`expected ${sessions} new keys in Redis, found ${keys}`)
      return { sessions, usedMemoryBefore, usedMemoryAfter, keys, bytesPerSession: (usedMemoryAfter - usedMemoryBefore) / sessions }
    })
  } finally {
    inspector.disconnect()
  }
}

/**
 * PostgreSQL's on-disk growth for `sessions` sessions written by the postgres authenticator (one
 * INSERT each), per session: the table and its indexes, as pg_total_relation_size counts them,
 * each time after a VACUUM, so the free-space and visibility maps are there before and after
 * and only the sessions differ. Rows that a touch has replaced and VACUUM not yet reclaimed
 * come on top of this in a busy cluster; this is what a live session itself costs. Give it an
 * empty database of its own.
 */
export async function measurePostgresSessions (sessions: number, databaseUrl: string): Promise<PostgresSessionCost> {
  const inspector = new pg.Client({ connectionString: databaseUrl })
  inspector.on('error', () => {})
  await inspector.connect()
  try {
    return await withAuthenticator({ AUTH_MODE: 'postgres', DATABASE_URL: databaseUrl, PG_QUERY_TIMEOUT_MS: '10000', PG_POOL_SIZE: '8' }, async (authenticator) => {
      const sizes = async (): Promise<{ total: number, table: number, indexes: number, rows: number }> => {
        await inspector.query('VACUUM (ANALYZE) sessions')
        const { rows } = await inspector.query("SELECT pg_total_relation_size('sessions')::float8 AS total, pg_relation_size('sessions')::float8 AS table, pg_indexes_size('sessions')::float8 AS indexes, (SELECT count(*) FROM sessions)::float8 AS rows")
        return rows[0] as { total: number, table: number, indexes: number, rows: number }
      }
      const before = await sizes()
      const inFlight = 200
      for (let done = 0; done < sessions; done += inFlight) {
        const batch: Array<Promise<unknown>> = []
        for (let i = done; i < Math.min(sessions, done + inFlight); i++) batch.push(authenticator.login(USERS[i % USERS.length] as string))
        await Promise.all(batch)
      }
      const after = await sizes()
      const rows = after.rows - before.rows
      if (rows !== sessions) throw new Error(`expected ${sessions} new rows in PostgreSQL, found ${rows}`)
      return {
        sessions,
        totalBytesBefore: before.total,
        totalBytesAfter: after.total,
        tableBytes: after.table - before.table,
        indexBytes: after.indexes - before.indexes,
        rows,
        bytesPerSession: (after.total - before.total) / sessions
      }
    })
  } finally {
    await inspector.end()
  }
}

/** The bytes a client sends as its credential on every request, in each mode. */
export async function measureCredentialSizes (): Promise<CredentialSizes> {
  const sessionIdBytes = await withAuthenticator({ AUTH_MODE: 'memory' }, async (a) => Buffer.byteLength((await a.login('alice')).token))
  const jwtBytes = await withAuthenticator({ AUTH_MODE: 'jwt', JWT_SECRET: randomBytes(48).toString('base64url') },
    async (a) => Buffer.byteLength((await a.login('alice')).token))
  return { sessionIdBytes, jwtBytes }
}
