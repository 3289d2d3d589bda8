import http from 'node:http'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { startCluster } from '../cluster.ts'
import { ManagedProcess } from '../lib/managed-process.ts'
import { freePort } from '../lib/ports.ts'
import { httpOk } from '../lib/probes.ts'
import { describe } from './kill-server.ts'
import { sleep, timeUntil } from './load.ts'
import { getJson, loginOnce, processFootprint, type FaultResult } from './support.ts'

const BALANCER_ENTRY = fileURLToPath(new URL('../../balancer/server.ts', import.meta.url))
// Idle sockets take a few seconds to go: the balancer drops idle upstream sockets after 4 s
// and idle clients after 5 s.
const SETTLE_MS = 6000
// Sockets the OS may hold a moment longer: room, not a leak.
const FD_SLACK = 4
// The live heap after a full GC: a leak of even a few hundred bytes per request would show
// as megabytes over thousands.
const HEAP_SLACK_MB = 4

interface WatchedBalancer {
  url: string
  proc: ManagedProcess
  /** The balancer's live JS heap after a full garbage collection, in MB: what a leak would grow. */
  heapMb (): Promise<number>
  close (): Promise<void>
}

/**
 * A real balancer process (balancer/server.ts) with the inspector open on loopback, so the
 * test can collect its garbage and read its heap: resident memory says little, since V8 and
 * malloc keep what they once grew.
 */
async function startWatchedBalancer (upstreams: string[]): Promise<WatchedBalancer> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  let inspectorUrl: string | undefined
  const proc = new ManagedProcess({
    name: 'balancer',
    command: process.execPath,
    args: ['--inspect=127.0.0.1:0', '--disable-warning=DEP0060', BALANCER_ENTRY],
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', UPSTREAMS: upstreams.join(','), HEALTH_INTERVAL_MS: '100', LOG_LEVEL: 'error' },
    isReady: async () => inspectorUrl !== undefined && await httpOk(`${url}/_balancer/stats`)
  }, (_source, line) => {
    inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(line)?.[1]
  })
  await proc.start()
  const socket = new WebSocket(inspectorUrl ?? '')
  await new Promise((resolve, reject) => { socket.onopen = resolve; socket.onerror = reject })
  let id = 0
  const pending = new Map<number, (result: unknown) => void>()
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number, result?: unknown }
    if (message.id !== undefined) pending.get(message.id)?.(message.result)
  }
  const call = async (method: string, params: Record<string, unknown> = {}): Promise<unknown> => await new Promise((resolve) => {
    const n = ++id
    pending.set(n, resolve)
    socket.send(JSON.stringify({ id: n, method, params }))
  })
  return {
    url,
    proc,
    async heapMb () {
      await call('HeapProfiler.collectGarbage')
      await call('HeapProfiler.collectGarbage')
      const result = await call('Runtime.evaluate', { expression: 'process.memoryUsage().heapUsed', returnByValue: true }) as { result: { value: number } }
      return result.result.value / 1024 / 1024
    },
    async close () {
      socket.close()
      await proc.stop()
    }
  }
}

/** Runs `total` jobs with at most `concurrency` at once. */
async function pool (total: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) await job(next++)
  }))
}

/** A client that goes away mid-request, in one of four ways. */
async function abortOnce (port: number, kind: number, token: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const finish = (): void => { socket.destroy(); resolve() }
    socket.on('error', () => {})
    socket.on('close', () => { resolve() })
    socket.on('connect', () => {
      const get = `GET /feeds HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`
      switch (kind % 4) {
        case 0: // the whole request, then gone at once
          socket.write(get, finish)
          break
        case 1: // gone a moment later, often while the upstream is answering
          socket.write(get)
          setTimeout(finish, Math.floor(Math.random() * 4))
          break
        case 2: // a login whose body never finishes: the upstream request is waiting for it
          socket.write('POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"username":"alice",')
          setTimeout(finish, 2 + Math.floor(Math.random() * 6))
          break
        default: // half the headers
          socket.write(get.slice(0, 30), finish)
      }
    })
  })
}

/** Open file descriptors (NaN where /proc cannot say) and the live heap after a full GC (MB), before the churn and once it settled. */
export interface Footprint { fds: number, heapMb: number }

/** What clientAborts measured. */
export interface ClientAbortFigures {
  aborts: number
  balancer: { before: Footprint, after: Footprint }
  /** The app servers' open file descriptors, all together. */
  serversFds: { before: number, after: number }
  /** From the last abort to the sockets being back within a few of where they were (undefined: not within 16 s). */
  settledMs: number | undefined
  /** Whether the balancer and every server were still running, and the balancer answered GET /feeds 200, after. */
  allRunning: boolean
  answersAfter: boolean
}

/** What upstreamResets measured. */
export interface UpstreamResetFigures {
  /** Connections the stand-in upstreams reset. */
  resets: number
  /** What the clients got, by status (0: no answer, then by error: `0 timeout` is a client left hanging). */
  outcomes: Record<string, number>
  balancer: { before: Footprint, after: Footprint }
  settledMs: number | undefined
  /** Whether the balancer was still running, and what its /_balancer/stats answered, after. */
  balancerRunning: boolean
  statsStatus: number
}

/**
 * Thousands of clients hanging up mid-request, through a real balancer process in front of a
 * real cluster. The balancer must destroy the upstream request each left behind (http-proxy
 * #1586), so its sockets and heap, and the app servers' sockets, come back to where they were.
 */
export async function clientAborts (options: { aborts?: number } = {}): Promise<FaultResult<ClientAbortFigures>> {
  const { aborts = 2000 } = options
  const cluster = await startCluster({ mode: 'jwt', servers: 3, logLevel: 'warn' })
  let balancer: WatchedBalancer | undefined
  try {
    balancer = await startWatchedBalancer(cluster.servers.map((s) => s.url))
    const watched = balancer
    const port = Number(new URL(watched.url).port)
    const { token } = await loginOnce(watched.url)
    const sockets = (): { balancer: number, servers: number } => ({
      balancer: processFootprint(watched.proc.pid)?.fds ?? Number.NaN,
      servers: cluster.servers.reduce((n, s) => n + (processFootprint(s.pid)?.fds ?? Number.NaN), 0)
    })
    await warmUp(watched.url, token)
    await sleep(SETTLE_MS)
    const before = { ...sockets(), heap: await watched.heapMb() }

    const started = performance.now()
    await pool(aborts, 50, async (i) => { await abortOnce(port, i, token) })
    const churnMs = performance.now() - started
    // "After" is the sample that settled, not a new one: a health check or a pooled upstream
    // connection can open a socket a moment later (a CI run read 31 -> 36 that way, 311 ms after
    // the count had come back). A leak never settles, and then the last sample is the figure.
    let last = sockets()
    const settled = await timeUntil(() => {
      last = sockets()
      return last.balancer <= before.balancer + FD_SLACK && last.servers <= before.servers + FD_SLACK
    }, SETTLE_MS + 10_000, 100)
    const after = { ...last, heap: await watched.heapMb() }

    const answers = (await fetch(`${watched.url}/feeds`, { headers: { authorization: `Bearer ${token}` } })).status === 200
    const alive = [watched.proc, ...cluster.servers].every((p) => p.running)
    const measured = !Number.isNaN(before.balancer)
    return {
      fault: `${aborts} clients hang up mid-request (4 ways)`,
      mode: 'jwt',
      requests: aborts,
      failed: alive && answers ? 0 : 1,
      detectMs: undefined,
      recoverMs: settled,
      notes: `in ${(churnMs / 1000).toFixed(1)} s; balancer heap ${fmt(before.heap)} -> ${fmt(after.heap)} MB${measured ? `, open fds ${before.balancer} -> ${after.balancer}; app servers' fds ${before.servers} -> ${after.servers}` : ''}`,
      checks: [
        { name: 'every process is still running and the balancer still answers', ok: alive && answers },
        { name: 'the balancer\'s and the app servers\' open sockets come back to where they were', ok: !measured || settled !== undefined },
        { name: `the balancer's heap comes back to where it was (within ${HEAP_SLACK_MB} MB)`, ok: after.heap - before.heap < HEAP_SLACK_MB }
      ],
      figures: {
        aborts,
        balancer: { before: { fds: before.balancer, heapMb: before.heap }, after: { fds: after.balancer, heapMb: after.heap } },
        serversFds: { before: before.servers, after: after.servers },
        settledMs: settled,
        allRunning: alive,
        answersAfter: answers
      }
    }
  } finally {
    await balancer?.close()
    await cluster.stop()
  }
}

/**
 * Upstreams that reset their connections, thousands of times: on a reused connection before
 * answering (the keep-alive race), or after the headers and part of the body (a crash). A real
 * balancer process in front of two such stand-ins (the real app servers do not misbehave on
 * cue). Every client must get an answer or a cut-off connection, never a hang; the balancer
 * must survive with its sockets and heap back where they were.
 */
export async function upstreamResets (options: { resets?: number } = {}): Promise<FaultResult<UpstreamResetFigures>> {
  const { resets = 2000 } = options
  let resetCount = 0
  const chaos = await Promise.all([0, 1].map(async () => {
    let n = 0
    const server = http.createServer((req, res) => {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{"status":"ok"}')
        return
      }
      n++
      // The first request on each connection is answered, so the connection is pooled and the
      // upstream stays in rotation; after that it resets.
      const socket = req.socket as net.Socket & { served?: number }
      const served = socket.served ?? 0
      socket.served = served + 1
      if (req.url === '/ok' || served === 0) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{"ok":true}')
      } else if (n % 2 === 0) {
        resetCount++
        req.socket.resetAndDestroy()
      } else {
        resetCount++
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
        res.write('{"partial":')
        setImmediate(() => { req.socket.resetAndDestroy() })
      }
    })
    server.keepAliveTimeout = 5000
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return server
  }))
  let balancer: WatchedBalancer | undefined
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 })
  try {
    balancer = await startWatchedBalancer(chaos.map((s) => `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`))
    const watched = balancer
    const get = async (path: string): Promise<{ status: number, error?: string }> => await new Promise((resolve) => {
      const req = http.get(`${watched.url}${path}`, { agent, timeout: 5000 }, (res) => {
        res.resume()
        res.on('end', () => { resolve({ status: res.statusCode ?? 0 }) })
        res.on('error', () => { resolve({ status: 0, error: 'cut off' }) })
      })
      req.on('timeout', () => { req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })) })
      req.on('error', (err: NodeJS.ErrnoException) => { resolve({ status: 0, error: err.code ?? 'error' }) })
    })
    for (let i = 0; i < 200; i++) await get('/ok')
    await sleep(SETTLE_MS)
    const fds = (): number => processFootprint(watched.proc.pid)?.fds ?? Number.NaN
    const before = { fds: fds(), heap: await watched.heapMb() }

    const outcomes: Array<{ status: number, error?: string }> = []
    const deadline = performance.now() + 60_000
    await pool(resets * 4, 20, async () => {
      if (resetCount >= resets || performance.now() > deadline) return
      outcomes.push(await get('/reset'))
    })
    agent.destroy()
    // The sample that settled, as in clientAborts.
    let last = fds()
    const settled = await timeUntil(() => (last = fds()) <= before.fds + FD_SLACK, SETTLE_MS + 10_000, 100)
    const after = { fds: last, heap: await watched.heapMb() }
    const hung = outcomes.filter((o) => o.error === 'timeout')
    const fine = await getJson(`${watched.url}/_balancer/stats`)
    const measured = !Number.isNaN(before.fds)
    const tally = describe(outcomes.map((o) => ({ status: o.status, detail: o.status === 0 ? o.error : undefined })))
    return {
      fault: `${resetCount} upstream connection resets (before and mid-response)`,
      mode: 'stand-in',
      requests: outcomes.length,
      failed: hung.length + (watched.proc.running ? 0 : 1),
      detectMs: undefined,
      recoverMs: settled,
      notes: `${tally}; balancer heap ${fmt(before.heap)} -> ${fmt(after.heap)} MB${measured ? `, open fds ${before.fds} -> ${after.fds}` : ''}`,
      checks: [
        { name: `the upstreams reset at least ${resets} connections`, ok: resetCount >= resets },
        { name: 'every client got an answer or a cut-off connection: none hung', ok: hung.length === 0 },
        { name: 'the balancer survives and answers after', ok: watched.proc.running && fine.status === 200 },
        { name: 'its open sockets come back to where they were', ok: !measured || settled !== undefined },
        { name: `its heap comes back to where it was (within ${HEAP_SLACK_MB} MB)`, ok: after.heap - before.heap < HEAP_SLACK_MB }
      ],
      figures: {
        resets: resetCount,
        outcomes: Object.fromEntries([...outcomeCounts(outcomes)]),
        balancer: { before: { fds: before.fds, heapMb: before.heap }, after: { fds: after.fds, heapMb: after.heap } },
        settledMs: settled,
        balancerRunning: watched.proc.running,
        statsStatus: fine.status
      }
    }
  } finally {
    agent.destroy()
    await balancer?.close()
    for (const server of chaos) {
      server.closeAllConnections()
      server.close()
    }
  }
}

/** Outcomes counted by status, or `0 <error>` for no answer: `0 timeout`, `0 ECONNRESET`, `0 cut off`. */
function outcomeCounts (outcomes: Array<{ status: number, error?: string }>): Map<string, number> {
  const counts = new Map<string, number>()
  for (const o of outcomes) {
    const key = o.status === 0 ? `0 ${o.error ?? 'error'}` : String(o.status)
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

async function warmUp (url: string, token: string): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 })
  await pool(300, 20, async () => {
    await new Promise<void>((resolve) => {
      http.get(`${url}/feeds`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => { res.resume(); res.on('end', resolve) }).on('error', () => { resolve() })
    })
  })
  agent.destroy()
}

function fmt (mb: number | undefined): string {
  return mb === undefined ? '?' : mb.toFixed(1)
}
