import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ManagedProcess } from '../lib/managed-process.ts'
import { freePort } from '../lib/ports.ts'
import { redisPong } from '../lib/probes.ts'
import { REDIS_MISSING } from '../lib/redis-process.ts'

/**
 * What one fault did, and whether the bounds the project promises held. `checks` are this
 * script's verdicts, for `npm run faults`'s table; `figures` are the raw measurements behind
 * them, so a test can hold them to bounds of its own instead of trusting the verdicts.
 */
export interface FaultResult<Figures extends object = object> {
  fault: string
  mode: string
  /** Requests the load sent during the run. */
  requests: number
  /** Requests that broke the promise for this fault (what counts is said in `notes`). */
  failed: number
  /** From the fault to the system noticing it (ms), when that applies. */
  detectMs: number | undefined
  /** From the fault's end to normal service (ms), when that applies. */
  recoverMs: number | undefined
  notes: string
  /** Each bound checked, as `npm run faults` prints them. */
  checks: Array<{ name: string, ok: boolean }>
  /** What was measured, before any bound: test/faults checks these against its own bounds. */
  figures: Figures
}

/** How many answers had each status (0: no answer), e.g. { 200: 950, 503: 48 }. */
export function countStatuses (records: ReadonlyArray<{ status: number }>): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const r of records) counts[r.status] = (counts[r.status] ?? 0) + 1
  return counts
}

export async function getJson (url: string, timeoutMs = 5000): Promise<{ status: number, body: Record<string, unknown> }> {
  return await new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> })
        } catch {
          reject(new Error(`GET ${url} answered ${res.statusCode ?? 0} with a body that is not JSON`))
        }
      })
    })
    req.on('timeout', () => { req.destroy(new Error(`GET ${url} timed out`)) })
    req.on('error', reject)
  })
}

export interface UpstreamView { url: string, healthy: boolean, requests: number, failures: number }

export async function balancerStats (url: string): Promise<UpstreamView[]> {
  return (await getJson(`${url}/_balancer/stats`)).body.upstreams as UpstreamView[]
}

/** Logs `user` in through `url`; resolves to the token and the server that made it. */
export async function loginOnce (url: string, user = 'alice', password = 'wonderland'): Promise<{ token: string, servedBy: string }> {
  const body = JSON.stringify({ username: user, password })
  return await new Promise((resolve, reject) => {
    const req = http.request(`${url}/login`, { method: 'POST', agent: false, timeout: 10_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`login answered ${res.statusCode ?? 0}: ${text}`))
          return
        }
        const parsed = JSON.parse(text) as { token: string, servedBy: string }
        resolve({ token: parsed.token, servedBy: parsed.servedBy })
      })
    })
    req.on('timeout', () => { req.destroy(new Error('login timed out')) })
    req.on('error', reject)
    req.end(body)
  })
}

const USERS: Array<[string, string]> = [['alice', 'wonderland'], ['bob', 'builder'], ['carol', 'lighthouse']]

/** `count` logins, one after another (so round robin spreads them evenly), cycling the demo users. */
export async function loginMany (url: string, count: number): Promise<Array<{ token: string, servedBy: string }>> {
  const sessions: Array<{ token: string, servedBy: string }> = []
  for (let i = 0; i < count; i++) {
    const [user, password] = USERS[i % USERS.length] ?? USERS[0] as [string, string]
    sessions.push(await loginOnce(url, user, password))
  }
  return sessions
}

/** Open file descriptors (sockets included) and resident memory of a process, read from /proc (Linux). */
export function processFootprint (pid: number | undefined): { fds: number, rssMb: number } | undefined {
  if (pid === undefined) return undefined
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).length
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return { fds, rssMb: Number(rss ?? 0) / 1024 }
  } catch {
    return undefined
  }
}

export type PersistentRedis = ManagedProcess & { readonly url: string, readonly port: number, remove (): Promise<void> }

/**
 * A private redis-server that keeps every write on disk (append-only file, fsync on every
 * write), so killing it and starting it again on the same port brings back every session it
 * had acknowledged: the "Redis crashed and came back" case.
 */
export async function startPersistentRedis (): Promise<PersistentRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'auth-cluster-faults-'))
  const port = await freePort()
  const proc = new ManagedProcess({
    name: 'redis',
    command: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--loglevel', 'warning'],
    env: { ...process.env } as Record<string, string>,
    isReady: async () => await redisPong(port),
    readyTimeoutMs: 20_000,
    whenMissing: REDIS_MISSING
  }, () => {})
  await proc.start()
  return Object.assign(proc, {
    url: `redis://127.0.0.1:${port}`,
    port,
    async remove () {
      await proc.stop('SIGKILL', 0)
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}
