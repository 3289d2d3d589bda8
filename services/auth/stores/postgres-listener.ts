import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'

/** How often the LISTEN connection is asked to answer: a connection that died without a word is found within this plus the timeout. */
export const HEARTBEAT_EVERY_MS = 1000
/** Waits between reconnection attempts: 100 ms, doubling, never more than a second. */
const RETRY_FIRST_MS = 100
const RETRY_MAX_MS = 1000

export interface EndedSessionsListener {
  /** Whether this server hears of ended sessions now. */
  listening (): boolean
  close (): Promise<void>
}

export interface ListenerOptions {
  url: string
  /** The NOTIFY channel; a constant of ours (an identifier), never user input. */
  channel: string
  /** Connecting, and each heartbeat, waits no longer than this (PG_QUERY_TIMEOUT_MS). */
  timeoutMs: number
  /** Its application_name in pg_stat_activity: what an operator (or a test) finds it by. */
  name: string
  log: FastifyBaseLogger
  /** A session ended on some server (this one included): the notification's payload, its id. */
  onEnded: (id: string) => void
  /** LISTEN took effect (at start, and after every reconnection): whatever came before is unknown. */
  onListening: () => void
  onLost: () => void
}

/**
 * One dedicated connection per server that LISTENs for ended sessions (PostgreSQL's LISTEN/NOTIFY,
 * which pg's Client supports: a pooled connection cannot hold a LISTEN, since the pool hands it
 * to other queries). Notifications are not queued for a listener that is gone: one sent while the
 * connection is down is lost for good. So a lost connection is reported at once (`onLost`: the
 * cache must not be used, for it may now miss logouts), and once LISTEN is in place again
 * `onListening` runs (the cache must drop everything, for it may have missed some). A connection
 * that dies without closing (a frozen server, a cut network) is found by a heartbeat.
 *
 * Not through PgBouncer in transaction or statement mode, which cannot keep a LISTEN: point
 * DATABASE_URL at PostgreSQL, or at a pooler in session mode.
 */
export async function listenForEndedSessions (options: ListenerOptions): Promise<EndedSessionsListener> {
  const { url, channel, timeoutMs, name, log } = options
  let client: pg.Client | undefined
  let listening = false
  let closed = false
  let attempt = 0
  let lastError = ''
  let retry: NodeJS.Timeout | undefined
  let beating = false

  function lost (from: pg.Client, err: unknown): void {
    // Late events from a connection already given up (its 'end' after its 'error').
    if (client !== from) return
    client = undefined
    const message = (err as Error).message
    if (listening) log.warn({ err: message }, 'lost the connection that hears of logouts: the session cache is off until it is back')
    else if (message !== lastError) log.warn({ err: message }, 'cannot listen for logouts: the session cache stays off')
    lastError = message
    listening = false
    options.onLost()
    from.end().catch(() => {})
    if (!closed) {
      retry = setTimeout(() => { connect().catch(() => {}) }, Math.min(RETRY_FIRST_MS * 2 ** attempt++, RETRY_MAX_MS))
      retry.unref()
    }
  }

  async function connect (): Promise<void> {
    const c = new pg.Client({ connectionString: url, application_name: name, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, keepAlive: true })
    client = c
    c.on('error', (err) => { lost(c, err) })
    c.on('end', () => { lost(c, new Error('connection ended')) })
    c.on('notification', (message) => {
      if (message.channel === channel && message.payload !== undefined && message.payload !== '') options.onEnded(message.payload)
    })
    try {
      await c.connect()
      await c.query(`LISTEN ${channel}`)
    } catch (err) {
      lost(c, err)
      return
    }
    if (client !== c || closed) {
      // Closed while it connected: this connection is nobody's.
      c.end().catch(() => {})
      return
    }
    // In this order: from here on every logout is heard, so what is dropped now cannot come back stale.
    options.onListening()
    listening = true
    attempt = 0
    lastError = ''
    log.info({ channel }, 'listening for logouts on other servers')
  }

  const heartbeat = setInterval(() => {
    const c = client
    if (c === undefined || !listening || beating) return
    beating = true
    c.query('SELECT 1').then(() => {}, (err: unknown) => { lost(c, err) }).finally(() => { beating = false })
  }, HEARTBEAT_EVERY_MS)
  heartbeat.unref()

  // A database down at start is no reason not to start: the cache stays off until it listens.
  await connect()

  return {
    listening: () => listening,
    async close () {
      closed = true
      clearInterval(heartbeat)
      clearTimeout(retry)
      const c = client
      client = undefined
      listening = false
      // Ending a connection waits for the server's goodbye, which a frozen server never sends.
      if (c !== undefined) await Promise.race([c.end().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1000).unref())])
    }
  }
}
