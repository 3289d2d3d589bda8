import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'

export interface ProcessSpec {
  /** Shown before each log line, e.g. app-1. */
  name: string
  command: string
  args: string[]
  env: Record<string, string>
  /** Resolves true once the process answers; polled after spawn. */
  isReady: () => Promise<boolean>
  readyTimeoutMs?: number
  /** What to tell the user when the command itself is missing. */
  whenMissing?: string
  /** Opens an IPC channel to the child (a Node process): see `send` and `onMessage`. */
  ipc?: boolean
  /**
   * The child reports its port: it is started with this variable (e.g. PORT) as `env` gives it,
   * or 0 when `env` does not set it (any port the OS gives), and reports the port it bound over
   * IPC as `{ type: 'listening', port }` (`reportedPort`); only then is `isReady` asked. Later
   * starts ask for that same port again, since peers know it by then. A port chosen for the child
   * in advance could be taken by another process in the moment before the child binds it.
   */
  portVariable?: string
  /**
   * Starts the child in a process group of its own, so a terminal's Ctrl-C (SIGINT to the whole
   * foreground group) reaches the launcher alone, which then stops its children in its own order:
   * otherwise each child closes on the terminal's SIGINT, and the launcher's SIGTERM that follows
   * is a second signal, which makes close-with-grace exit at once, cutting requests in flight.
   * Only for a launcher that stops its children on SIGINT, SIGTERM and SIGHUP: a group of its
   * own also means the terminal's signals no longer end a child its launcher left behind.
   */
  ownProcessGroup?: boolean
  /** Runs the child as this user and group (the launcher must be root): PostgreSQL refuses to run as root. */
  uid?: number
  gid?: number
}

/** True for the error `start` throws when the child said its address was in use (EADDRINUSE). */
export function isAddressInUse (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'EADDRINUSE'
}

export type LogSink = (source: string, line: string, stream: 'stdout' | 'stderr') => void

const live = new Set<ChildProcess>()
// Whatever way the launcher's process ends, no child outlives it (SIGKILL aside).
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/**
 * One child process the launcher owns: started, waited for until it answers,
 * stopped with SIGTERM (then SIGKILL), and restarted on the same port.
 */
export class ManagedProcess {
  readonly name: string
  #spec: ProcessSpec
  readonly #onLog: LogSink
  #child: ChildProcess | undefined
  #exited: Promise<number | null> | undefined
  #stderrTail: string[] = []
  #reportedPort: number | undefined
  /** Called when the process exits without being asked to. */
  onUnexpectedExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined
  /** Called with each message the child sends over its IPC channel (spec.ipc). */
  onMessage: ((message: unknown) => void) | undefined

  constructor (spec: ProcessSpec, onLog: LogSink) {
    this.name = spec.name
    this.#spec = spec
    this.#onLog = onLog
  }

  get pid (): number | undefined { return this.#child?.pid }
  get running (): boolean { return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null }
  /** The port the child said it listens on (spec.portVariable); kept across restarts. */
  get reportedPort (): number | undefined { return this.#reportedPort }
  /** The environment its next start gives it (and its current one, unless updateEnv changed it since). */
  get env (): Readonly<Record<string, string>> { return this.#spec.env }

  async start (): Promise<void> {
    if (this.running) return
    const { name, command, args, portVariable } = this.#spec
    const env = portVariable === undefined ? this.#spec.env : { ...this.#spec.env, [portVariable]: String(this.#reportedPort ?? this.#spec.env[portVariable] ?? 0) }
    this.#stderrTail = []
    let listening = false
    let addressInUse = false
    const ipc = this.#spec.ipc === true || portVariable !== undefined
    const stdio: StdioOptions = ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe']
    const { uid, gid } = this.#spec
    const child = spawn(command, args, { env, stdio, detached: this.#spec.ownProcessGroup === true, ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }) }) as ChildProcess & { stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream }
    this.#child = child
    if (ipc) {
      child.on('message', (message) => {
        const report = message as { type?: unknown, port?: unknown } | null
        if (portVariable !== undefined && report?.type === 'listening' && typeof report.port === 'number' && Number.isInteger(report.port) && report.port > 0) {
          this.#reportedPort = report.port
          listening = true
          return
        }
        this.onMessage?.(message)
      })
    }
    live.add(child)
    let stopping = false
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child)
        if (!stopping && (child as { expectedExit?: boolean }).expectedExit !== true) this.onUnexpectedExit?.(code, signal)
        resolve(code)
      })
    })
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve))
    // After 'exit', once its output has been read to the end.
    const closed = new Promise<void>((resolve) => child.once('close', () => { resolve() }))
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream], crlfDelay: Infinity }).on('line', (line) => {
        if (stream === 'stderr') this.#stderrTail = [...this.#stderrTail.slice(-19), line]
        // Node's own words when listen() fails on a taken port, in a pino line or a stack trace.
        if (line.includes('EADDRINUSE')) addressInUse = true
        this.#onLog(name, line, stream)
      })
    }

    const deadline = Date.now() + (this.#spec.readyTimeoutMs ?? 60_000)
    for (;;) {
      const outcome = await Promise.race([
        spawnError.then((err) => ({ err })),
        this.#exited.then((code) => ({ code })),
        sleep(50).then(() => ({ tick: true }))
      ])
      if ('err' in outcome) {
        stopping = true
        const missing = (outcome.err as NodeJS.ErrnoException).code === 'ENOENT'
        throw new Error(missing && this.#spec.whenMissing !== undefined ? this.#spec.whenMissing : `${name} could not start: ${outcome.err.message}`)
      }
      if ('code' in outcome) {
        // Its last lines (the reason it exited) may still be in the pipes.
        await Promise.race([closed, sleep(1000)])
        const err = new Error(`${name} exited with code ${String(outcome.code)} while starting${addressInUse ? ': its address is in use (EADDRINUSE)' : ''}${this.#describeStderr()}`)
        throw addressInUse ? Object.assign(err, { code: 'EADDRINUSE' }) : err
      }
      if ((portVariable === undefined || listening) && await this.#spec.isReady().catch(() => false)) return
      if (Date.now() > deadline) {
        await this.stop()
        const silent = portVariable !== undefined && !listening ? ' (it never reported its port over IPC as { type: \'listening\', port })' : ''
        throw new Error(`${name} did not become ready within ${this.#spec.readyTimeoutMs ?? 60_000} ms${silent}${this.#describeStderr()}`)
      }
    }
  }

  /**
   * From now on, an exit of the running process is one that was asked for (no onUnexpectedExit),
   * though no signal is sent yet: for stopping several processes in order, where the later ones
   * may close before their turn (they got a signal of their own).
   */
  expectExit (): void {
    if (this.#child !== undefined) (this.#child as { expectedExit?: boolean }).expectedExit = true
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop (signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const child = this.#child
    if (child === undefined || !this.running) return
    ;(child as { expectedExit?: boolean }).expectedExit = true
    child.kill(signal)
    // A paused (SIGSTOPped) process acts on the signal only once it runs again.
    child.kill('SIGCONT')
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await this.#exited
    clearTimeout(timer)
  }

  /**
   * Changes the environment the next start gives the process (a running one keeps its own until
   * restarted): each name set to a value, or removed when the value is undefined.
   */
  updateEnv (changes: Record<string, string | undefined>): void {
    const env = { ...this.#spec.env }
    for (const [name, value] of Object.entries(changes)) {
      if (value === undefined) delete env[name]
      else env[name] = value
    }
    this.#spec = { ...this.#spec, env }
  }

  /** Sends a signal without waiting: SIGSTOP and SIGCONT freeze and thaw it, like a hung server. */
  signal (signal: NodeJS.Signals): void {
    if (this.running) this.#child?.kill(signal)
  }

  /** Sends a message over the IPC channel; false when there is none or it is closed. */
  send (message: unknown): boolean {
    const child = this.#child
    if (child?.connected !== true) return false
    try {
      return child.send(message as Parameters<ChildProcess['send']>[0])
    } catch {
      return false
    }
  }

  /** Kills the process at once, as a crash would. */
  async kill (): Promise<void> {
    await this.stop('SIGKILL', 0)
  }

  #describeStderr (): string {
    return this.#stderrTail.length === 0 ? '' : `:\n    ${this.#stderrTail.slice(-8).join('\n    ')}`
  }
}
