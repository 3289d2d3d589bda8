import { spawn, type ChildProcess } from 'node:child_process'
import { createConnection, createServer } from 'node:net'

/** A redis-server of a test's own: no state shared with other tests or with the machine's Redis. */
export interface PrivateRedis {
  /** redis://127.0.0.1:<port> */
  readonly url: string
  readonly port: number
  /** Ends the process (SIGTERM by default, SIGKILL for a crash) and resolves once it has exited. Idempotent. */
  stop (signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port, empty (nothing is saved), and resolves once it answers PING. Idempotent. */
  start (): Promise<void>
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers, like a hung server. */
  pause (): void
  /** Thaws a paused process (SIGCONT). */
  resume (): void
  /** Whether the process is running now. */
  running (): boolean
}

export interface StartRedisOptions {
  /** redis-server binary; default `redis-server` from PATH. */
  command?: string
  /** How long to wait for PING to answer; default 5000 ms. */
  readyTimeoutMs?: number
}

/** A port nobody is listening on right now (the kernel's choice). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

// Children still running when the test process ends are killed with it, even after a failed test.
const living = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of living) child.kill('SIGKILL')
})

/**
 * Starts `redis-server` on a free port with persistence off and resolves once it answers PING.
 * Call `stop()` in t.teardown. Another process may take the free port between the check and
 * redis binding it, so the first start tries a few ports.
 */
export async function startRedis (options: StartRedisOptions = {}): Promise<PrivateRedis> {
  const command = options.command ?? 'redis-server'
  const readyTimeoutMs = options.readyTimeoutMs ?? 5000
  let child: ChildProcess | undefined
  let port = 0

  async function launch (): Promise<void> {
    const proc = spawn(command, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    proc.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    proc.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const exited = new Promise<Error>((resolve) => {
      proc.on('error', (err) => resolve(err))
      proc.once('exit', (code, signal) => resolve(new Error(`redis-server on port ${port} exited (${signal ?? code}) before it was ready: ${output.trim()}`)))
    })
    proc.once('exit', () => living.delete(proc))
    living.add(proc)
    child = proc

    const deadline = Date.now() + readyTimeoutMs
    while (Date.now() < deadline) {
      const outcome = await Promise.race([ping(port).then((ok) => ok ? 'ready' : 'not yet'), exited])
      if (outcome instanceof Error) {
        child = undefined
        throw outcome
      }
      if (outcome === 'ready') return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await stopChild(proc, 'SIGKILL')
    child = undefined
    throw new Error(`redis-server on port ${port} did not answer PING within ${readyTimeoutMs} ms: ${output.trim()}`)
  }

  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    port = await freePort()
    try {
      await launch()
      lastError = undefined
      break
    } catch (err) {
      lastError = err
    }
  }
  if (lastError !== undefined) throw lastError

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop (signal: NodeJS.Signals = 'SIGTERM') {
      const proc = child
      child = undefined
      if (proc !== undefined) await stopChild(proc, signal)
    },
    async start () {
      if (child === undefined) await launch()
    },
    pause () {
      child?.kill('SIGSTOP')
    },
    resume () {
      child?.kill('SIGCONT')
    },
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null
  }
}

async function stopChild (proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  proc.kill(signal)
  // A paused (SIGSTOPped) process only acts on the signal once it runs again.
  proc.kill('SIGCONT')
  // A redis that ignores SIGTERM for long (it should not) is killed outright.
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** Whether something on `port` answers a RESP PING with PONG. */
async function ping (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' })
    let answer = ''
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      answer += chunk.toString()
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'))
    })
    socket.once('close', () => done(false))
  })
}
