import net from 'node:net'
import { startCluster } from '../cluster.ts'
import type { ManagedProcess } from '../lib/managed-process.ts'
import { describe } from './kill-server.ts'
import { sleep, startLoad } from './load.ts'
import { countStatuses, loginMany, type FaultResult } from './support.ts'

interface SlowRequest {
  /** Sends the rest of the body; resolves to the status that came back (0: none). */
  finish (): Promise<number>
}

/** A login whose body arrives in two halves: in flight until finish() is called. */
async function slowLogin (port: number): Promise<SlowRequest> {
  const body = JSON.stringify({ username: 'alice', password: 'wonderland' })
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let received = ''
  socket.on('data', (chunk) => { received += chunk.toString('latin1') })
  const closed = new Promise<void>((resolve) => socket.on('close', () => { resolve() }))
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(`POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`)
  return {
    async finish () {
      socket.write(body.slice(10))
      await Promise.race([closed, sleep(10_000), (async () => { while (!/\r\n\r\n/.test(received)) await sleep(10) })()])
      socket.destroy()
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0)
    }
  }
}

async function refusesNewConnections (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => { resolve(true) })
  })
}

/** What sigtermDrain measured. */
export interface DrainFigures {
  /** Requests in flight at the SIGTERM (logins with half their body sent), and how many were answered 200. */
  inFlight: number
  completed: number
  /** Whether the process was still running 500 ms after SIGTERM, with those requests unfinished. */
  runningAfterSigterm: boolean
  /** Whether a new connection was refused while it drained. */
  refusedNewConnection: boolean
  /** From SIGTERM to its exit (the launcher sends SIGKILL at 15 s). */
  drainMs: number
  /** Target server: the answers to the load through the balancer meanwhile, by status (0: none). */
  loadStatuses: Record<number, number>
}

/**
 * SIGTERM to a process with requests in flight (logins whose bodies are half sent): it must
 * stop taking connections, finish every request it has, then exit. For an app server, a load
 * through the balancer meanwhile must lose nothing: the balancer routes around it.
 */
export async function sigtermDrain (options: { target: 'server' | 'balancer', inFlight?: number, balancerThreads?: number }): Promise<FaultResult<DrainFigures>> {
  const { target, inFlight = 5, balancerThreads = 1 } = options
  // With balancer threads, the slow logins' connections land on every thread: each must drain.
  const cluster = await startCluster({ mode: 'jwt', servers: 3, logLevel: 'warn', balancerThreads })
  try {
    const victim: ManagedProcess & { url?: string } = target === 'server' ? cluster.servers[1] as ManagedProcess & { url: string } : cluster.balancer
    const victimPort = Number(new URL(target === 'server' ? (victim.url ?? '') : cluster.url).port)
    const sessions = await loginMany(cluster.url, 6)
    const load = target === 'server' ? startLoad({ url: cluster.url, tokens: sessions.map((s) => s.token), connections: 8, maxDurationMs: 60_000 }) : undefined
    await sleep(500)
    const slow = await Promise.all(Array.from({ length: inFlight }, async () => await slowLogin(victimPort)))
    await sleep(300)

    const termAt = performance.now()
    let exitedAt: number | undefined
    const stopping = victim.stop('SIGTERM', 15_000).then(() => { exitedAt = performance.now() })
    await sleep(500)
    const refuses = await refusesNewConnections(victimPort)
    const stillRunning = exitedAt === undefined
    const statuses = await Promise.all(slow.map(async (s) => await s.finish()))
    await stopping
    const drainMs = (exitedAt ?? performance.now()) - termAt

    await victim.start()
    const records = load === undefined ? [] : await load.stop()
    const failures = records.filter((r) => r.status !== 200)
    const completed = statuses.filter((s) => s === 200).length
    return {
      fault: `SIGTERM to ${target === 'server' ? 'an app server' : `the balancer${balancerThreads > 1 ? ` on ${balancerThreads} threads` : ''}`} with ${inFlight} requests in flight`,
      mode: 'jwt',
      requests: records.length + inFlight,
      failed: (inFlight - completed) + failures.length,
      detectMs: undefined,
      recoverMs: undefined,
      notes: `${completed} of ${inFlight} in-flight logins completed (200), then it exited ${(drainMs / 1000).toFixed(1)} s after SIGTERM${load === undefined ? '' : `; ${records.length} GETs through the balancer meanwhile${failures.length > 0 ? `, failed: ${describe(failures)}` : ', none failed'}`}`,
      checks: [
        { name: 'it waits for the requests in flight instead of exiting at once', ok: stillRunning },
        { name: 'it stops taking new connections', ok: refuses },
        { name: 'every request in flight completes', ok: completed === inFlight },
        ...(load === undefined ? [] : [{ name: 'the balancer routes around the draining server: no GET fails', ok: failures.length === 0 }])
      ],
      figures: { inFlight, completed, runningAfterSigterm: stillRunning, refusedNewConnection: refuses, drainMs, loadStatuses: countStatuses(records) }
    }
  } finally {
    await cluster.stop()
  }
}
