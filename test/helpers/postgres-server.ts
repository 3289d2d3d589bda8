import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { startPostgresProcess } from '../../scripts/lib/postgres-process.ts'

/** A PostgreSQL server of a test's own: no state shared with other tests or with the machine's PostgreSQL. */
export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string
  readonly port: number
  /** A new, empty database on this server, and its URL: one per test, so tests see only their own rows. */
  createDatabase (): Promise<string>
  /** Runs one statement as the superuser, in the database the URL names (this server's `postgres` by default). */
  sql (text: string, values?: unknown[], url?: string): Promise<Array<Record<string, unknown>>>
  /** Ends the server (SIGINT: a fast shutdown; SIGKILL: a crash of it and every backend) and resolves once it has exited. */
  stop (signal?: 'SIGINT' | 'SIGKILL'): Promise<void>
  /** Starts it again on the same port and data directory (the sessions survive), and resolves once it answers. */
  start (): Promise<void>
  /** Freezes the server and its backends (SIGSTOP): connections stay open, nothing answers, like a hung server. */
  pause (): void
  /** Thaws it (SIGCONT). */
  resume (): void
  running (): boolean
  /** Stops it and deletes its data directory. Call it in t.teardown; the process also dies with the test's. */
  remove (): Promise<void>
}

/** The launcher's private PostgreSQL (scripts/lib/postgres-process.ts), with the few extra moves tests make. */
export async function startPostgres (): Promise<PrivatePostgres> {
  const server = await startPostgresProcess()
  const sql = async (text: string, values?: unknown[], url = server.url): Promise<Array<Record<string, unknown>>> => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, query_timeout: 10_000 })
    client.on('error', () => {})
    await client.connect()
    try {
      return (await client.query(text, values)).rows as Array<Record<string, unknown>>
    } finally {
      await client.end()
    }
  }
  return {
    url: server.url,
    port: server.port,
    async createDatabase () {
      const name = `test_${randomBytes(6).toString('hex')}`
      await sql(`CREATE DATABASE ${name}`)
      return server.url.replace(/\/postgres$/, `/${name}`)
    },
    sql,
    stop: async (signal = 'SIGINT') => { await (signal === 'SIGKILL' ? server.kill() : server.stop()) },
    start: async () => { await server.start() },
    pause: () => { server.signal('SIGSTOP') },
    resume: () => { server.signal('SIGCONT') },
    running: () => server.running,
    remove: async () => { await server.remove() }
  }
}
