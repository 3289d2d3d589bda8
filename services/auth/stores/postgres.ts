import pg from 'pg'
import { withoutPassword } from '../../../lib/safe-url.ts'
import { SessionStoreUnavailableError } from '../authenticator.ts'
import type { FoundSession, SessionStore, SessionStoreFactory } from '../sessions.ts'

/**
 * Sessions in PostgreSQL, shared by every server: a row per session, and one round trip per
 * request. Times are milliseconds since the epoch (bigint) from the app's clock, never the
 * database's `now()`: the session rules and the tests read one clock.
 *
 * The client is node-postgres (pg), not postgres.js, though the two are equally fast here (a
 * prepared UPDATE from 16 callers over 4 connections: about 24,000 and 26,000 a second): what
 * decides is a frozen database (SIGSTOP: the socket stays open, nothing answers). pg has a
 * client-side timeout per query (`query_timeout`, brianc/node-postgres#3074) and one on taking a
 * connection from the pool (`connectionTimeoutMillis`), so every call here ends within
 * PG_QUERY_TIMEOUT_MS; postgres.js has `connect_timeout` and `idle_timeout` but no timeout on a
 * query once sent, and `statement_timeout` is enforced by the server, which is the part that hangs.
 */

/** One row per session; `idle_expires_at` never passes `absolute_expires_at`, so pruning reads it alone. */
const SCHEMA = `
BEGIN;
-- CREATE ... IF NOT EXISTS is not safe when several servers start at once: two can both find no
-- table and one fails on the catalog's unique index. A transaction-scoped advisory lock queues them.
SELECT pg_advisory_xact_lock(hashtext('auth-cluster:sessions-schema'));
CREATE TABLE IF NOT EXISTS sessions (
  id text COLLATE "C" PRIMARY KEY,
  user_name text NOT NULL,
  absolute_expires_at bigint NOT NULL,
  idle_expires_at bigint NOT NULL
);
-- What pruning looks up: without it each prune reads the whole table, as connect-pg-simple's did
-- until its users found it among their most expensive queries (voxpelli/node-connect-pg-simple#17, #156).
CREATE INDEX IF NOT EXISTS sessions_idle_expires_at ON sessions (idle_expires_at);
-- One row: when the cluster last pruned. A server prunes only when it wins this row, so the
-- cluster prunes once per interval however many servers it has, not each of them every
-- interval (voxpelli/node-connect-pg-simple#160).
CREATE TABLE IF NOT EXISTS sessions_pruned (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  at bigint NOT NULL
);
INSERT INTO sessions_pruned (at) VALUES (0) ON CONFLICT DO NOTHING;
COMMIT;`

// Named, so each connection parses and plans them once (unnamed, pg's rate drops by a third).
const INSERT = {
  name: 'sessions_insert',
  text: 'INSERT INTO sessions (id, user_name, absolute_expires_at, idle_expires_at) VALUES ($1, $2, $3, $4)'
}
/**
 * The GETEX of this mode: reads a session and renews its idle window in one statement. A session
 * already past either end is returned unchanged (its idle end <= now), so requests racing on it
 * all find it ended; no row is an unknown session. The row lock orders concurrent touches.
 */
const TOUCH = {
  name: 'sessions_touch',
  text: `UPDATE sessions
    SET idle_expires_at = CASE WHEN idle_expires_at > $2 AND absolute_expires_at > $2 THEN LEAST($3, absolute_expires_at) ELSE idle_expires_at END
    WHERE id = $1
    RETURNING user_name, absolute_expires_at, idle_expires_at`
}
const DELETE = { name: 'sessions_delete', text: 'DELETE FROM sessions WHERE id = $1' }
const PING = { name: 'sessions_ping', text: 'SELECT 1' }
/**
 * A DELETE that every server listening on the channel hears of (the local cache's invalidation,
 * ./postgres-listener.ts): one statement, so the NOTIFY goes out when the DELETE commits, and
 * only then (PostgreSQL delivers a transaction's notifications at its commit). Sent whether or not
 * a row was there: a second logout of the same session tells the caches again, which is harmless.
 */
const DELETE_AND_NOTIFY = { name: 'sessions_delete_notify', text: 'WITH gone AS (DELETE FROM sessions WHERE id = $1) SELECT pg_notify($2, $1)' }
/** Wins this interval's pruning for this server, or returns no row. */
const CLAIM_PRUNE = { name: 'sessions_claim_prune', text: 'UPDATE sessions_pruned SET at = $1 WHERE at <= $2 RETURNING at' }
/** A bounded batch: one short statement, never a sweep that holds locks on the whole table. */
const PRUNE_BATCH = {
  name: 'sessions_prune_batch',
  text: `DELETE FROM sessions WHERE id IN (
    SELECT id FROM sessions WHERE idle_expires_at <= $1 ORDER BY idle_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`
}

/** How often the cluster prunes, at most; each server asks at a random point of each interval. */
export const PRUNE_INTERVAL_MS = 60_000
export const PRUNE_BATCH_ROWS = 1000
/** Batches per prune: past this the rest waits for the next interval, so no prune runs for long. */
export const PRUNE_MAX_BATCHES = 100
/** While the database is unreachable, how often a server tries again (so /health turns up by itself). */
const PROBE_EVERY_MS = 500

export interface PostgresStore extends SessionStore {
  /** One round trip that reads nothing (SELECT 1): the cache's proof that the database answers (./cached.ts). */
  ping (): Promise<void>
  /**
   * Deletes the sessions past their ends as of `at`, if this server wins the interval's turn: the
   * number deleted, or undefined when another server had the turn.
   */
  prune (at: number): Promise<number | undefined>
}

type Command = 'insert' | 'update' | 'delete' | 'ping'

export interface PostgresStoreOptions {
  /** A channel each DELETE notifies with the session's id, in the same statement (SESSION_CACHE_INVALIDATION=pubsub). */
  notifyEnded?: string
}

export const createPostgresStore: SessionStoreFactory = async (context) => await createPostgresSessions(context)

export async function createPostgresSessions ({ config, log, metrics, now }: Parameters<SessionStoreFactory>[0], options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const { url, queryTimeoutMs, poolSize } = config.postgres
  const idleMs = config.sessionIdleSeconds * 1000
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // Taking a connection from the pool, or opening one, waits no longer than a whole call may.
    connectionTimeoutMillis: queryTimeoutMs,
    // The server gives up too: pg's query_timeout leaves the query running there (brianc/node-postgres#1954).
    statement_timeout: queryTimeoutMs,
    keepAlive: true,
    application_name: `auth-cluster ${config.serverId}`
  })

  let status: 'up' | 'down' = 'down'
  let lastError = ''
  let probing: NodeJS.Timeout | undefined
  let closed = false
  const isClosed = (): boolean => closed

  function markUp (): void {
    if (status === 'down') log.info({ postgres: withoutPassword(url) }, 'postgres reachable')
    status = 'up'
    lastError = ''
  }
  function markDown (err: unknown): void {
    const message = (err as Error).message
    // Logged once per distinct error, not once per request during an outage.
    if (message !== lastError) log.warn({ err: message, postgres: withoutPassword(url) }, 'postgres error')
    lastError = message
    status = 'down'
    startProbing()
  }
  /** While down, the schema is asked for again every PROBE_EVERY_MS (it may be a new, empty database). */
  function startProbing (): void {
    if (probing !== undefined || closed) return
    probing = setInterval(() => {
      ensureSchema().then(() => {
        clearInterval(probing)
        probing = undefined
      }, () => {})
    }, PROBE_EVERY_MS)
    probing.unref()
  }
  // A pooled connection that breaks while idle (the database restarted) is reported here: without
  // a listener, that 'error' event would end the process.
  pool.on('error', (err) => { markDown(err) })
  // And one listener for each connection's whole life, from before the pool first hands it out:
  // the pool listens on idle connections only, and between handing one out and the caller's
  // next line there is a gap. Seen under load when PostgreSQL was killed: a new connection's
  // ReadyForQuery and the backend's "terminating connection due to unexpected postmaster exit"
  // came in one read, so the error was emitted in that gap, with no listener, and ended the
  // process. The statement on it fails by itself; this only keeps the event from ending the process.
  pool.on('connect', (client) => { client.on('error', ignoreError) })

  /**
   * One statement on a pooled connection, ended within PG_QUERY_TIMEOUT_MS all told. On any
   * error the connection is destroyed, not reused: after a timeout the server may still answer
   * the old query on it, and against a frozen server it would never be free again.
   */
  async function query (sql: pg.QueryConfig | string, values?: unknown[]): Promise<pg.QueryResult> {
    const deadline = performance.now() + queryTimeoutMs
    let client: pg.PoolClient | undefined
    try {
      // A connection that breaks under a statement fails the statement and also emits 'error':
      // the listener every connection gets on 'connect' (above) takes it.
      client = await pool.connect()
      const statement: pg.QueryConfig & { query_timeout: number } = {
        ...(typeof sql === 'string' ? { text: sql } : sql),
        ...(values === undefined ? {} : { values }),
        query_timeout: Math.max(1, Math.ceil(deadline - performance.now()))
      }
      const result = await client.query(statement)
      client.release()
      markUp()
      return result
    } catch (err) {
      client?.release(err as Error)
      if ((err as { code?: unknown }).code === '42P01') log.warn('the sessions table is gone: creating it again')
      markDown(err)
      throw new SessionStoreUnavailableError(err)
    }
  }

  // Counted when sent, answered or not, as Redis commands are: the store round trips each request costs.
  async function run (command: Command, sql: pg.QueryConfig, values: unknown[]): Promise<pg.QueryResult> {
    metrics.sessionStoreCommands.inc({ command })
    return await query(sql, values)
  }

  async function ensureSchema (): Promise<void> {
    await query(SCHEMA)
  }

  // A server whose database is down still starts: it answers 503 until the database is back.
  await ensureSchema().catch(() => {})

  // Each server asks for the turn at a random point of each interval, so the servers do not all ask at once.
  let pruning: NodeJS.Timeout | undefined
  const schedulePrune = (): void => {
    pruning = setTimeout(() => {
      store.prune(now()).catch((err: unknown) => { log.debug({ err }, 'prune skipped') }).finally(schedulePrune)
    }, PRUNE_INTERVAL_MS / 2 + Math.random() * PRUNE_INTERVAL_MS)
    pruning.unref()
  }

  const store: PostgresStore = {
    async create (id, { user, expiresAt }, at) {
      await run('insert', INSERT, [id, user, expiresAt, Math.min(at + idleMs, expiresAt)])
    },
    async touch (id, at) {
      const { rows } = await run('update', TOUCH, [id, at, at + idleMs])
      const row = rows[0] as { user_name: string, absolute_expires_at: string, idle_expires_at: string } | undefined
      if (row === undefined) return undefined
      // bigint arrives as a string; milliseconds since the epoch are far inside a double's exact range.
      const found: FoundSession = { user: row.user_name, expiresAt: Number(row.absolute_expires_at), idleUntil: Number(row.idle_expires_at) }
      return found
    },
    async delete (id) {
      if (options.notifyEnded === undefined) await run('delete', DELETE, [id])
      else await run('delete', DELETE_AND_NOTIFY, [id, options.notifyEnded])
    },
    async prune (at) {
      if ((await query(CLAIM_PRUNE, [at, at - PRUNE_INTERVAL_MS])).rowCount === 0) return undefined
      let deleted = 0
      for (let batch = 0; batch < PRUNE_MAX_BATCHES; batch++) {
        // close() may come between two batches.
        if (isClosed()) break
        const count = (await query(PRUNE_BATCH, [at, PRUNE_BATCH_ROWS])).rowCount ?? 0
        deleted += count
        if (count < PRUNE_BATCH_ROWS) break
      }
      if (deleted > 0) log.info({ deleted }, 'pruned ended sessions')
      return deleted
    },
    async ping () {
      await run('ping', PING, [])
    },
    status: () => status,
    async close () {
      closed = true
      clearTimeout(pruning)
      clearInterval(probing)
      // Ending a connection waits for the server's goodbye, which a frozen server never sends.
      await Promise.race([pool.end(), new Promise((resolve) => setTimeout(resolve, 1000).unref())])
    }
  }
  schedulePrune()
  return store
}

/** The statement's own failure says it all: this only keeps the event from ending the process. */
function ignoreError (): void {}
