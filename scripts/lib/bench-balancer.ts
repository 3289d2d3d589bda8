// `npm run bench:balancer`: what our balancer costs, against going straight
// to an app server and against nginx and haproxy in front of the same app
// servers, all measured in one run. The legs are interleaved round by round
// (the order rotating each round) and summarised by medians, so that a burst
// of noise from whatever else shares the machine lands on every leg alike.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { startCluster, type Cluster } from '../cluster.ts'
import { startLoadGenerator, type LoadGenerator, type LoadResult } from './bench-load.ts'
import { startOurBalancer, startReference, type ReferenceProxy } from './bench-proxies.ts'

export const LEG_NAMES = ['direct', 'ours', 'node-http', 'undici', 'nginx', 'haproxy'] as const
export type LegName = typeof LEG_NAMES[number]
/** The legs that run once per --threads value: ours (BALANCER_THREADS), nginx (workers), haproxy (nbthread). */
export const THREADED_LEGS: readonly LegName[] = ['ours', 'nginx', 'haproxy']
export const ROUTES = ['health', 'feeds'] as const
export type Route = typeof ROUTES[number]

/** The goal from issue 3: ours at ≥ 0.8 of nginx's throughput and ≤ 1.5 × its p99. */
export const TARGET = { rpsAtLeast: 0.8, p99AtMost: 1.5 } as const

export interface BenchOptions {
  /** App servers behind each balancer (the direct leg uses the first). */
  servers: number
  connections: number
  durationSeconds: number
  rounds: number
  /** One unmeasured run per leg before the first round. */
  warmupSeconds: number
  legs: readonly LegName[]
  route: Route
  /** Threads (or workers) for ours, nginx and haproxy: each value one leg of each. */
  threads: readonly number[]
}

export const DEFAULT_OPTIONS: BenchOptions = {
  servers: 2,
  connections: 50,
  durationSeconds: 4,
  rounds: 5,
  warmupSeconds: 2,
  legs: LEG_NAMES,
  route: 'health',
  threads: [1, 2]
}

export interface RoundResult extends LoadResult {
  round: number
  /** CPU time the proxy process used per request, in microseconds (none for direct). */
  proxyCpuUsPerRequest: number | null
  /** CPU time all app servers used per request, in microseconds. */
  serversCpuUsPerRequest: number | null
}

export interface LegSummary {
  rps: number
  latencyMs: { p50: number, p90: number, p99: number }
  proxyCpuUsPerRequest: number | null
  serversCpuUsPerRequest: number | null
}

export interface LegReport {
  name: LegName
  /** Its threads (ours), workers (nginx) or nbthread (haproxy); 1 for the others. */
  threads: number
  /** The name, with the threads when more than one: `ours x2`. */
  label: string
  description: string
  url: string | null
  /** Why the leg did not run (e.g. nginx is not installed); absent when it ran. */
  skipped?: string
  rounds: RoundResult[]
  /** Medians over the rounds; null when skipped. */
  median: LegSummary | null
  /** Summed over the rounds. */
  requests: number
  errors: number
  timeouts: number
  non2xx: number
}

export interface Ratio {
  /** median rps of ours / median rps of the other leg */
  rps: number
  /** median p99 of ours / median p99 of the other leg */
  p99: number
  p50: number
  /** The same ratios taken round by round: their lowest and highest. */
  rpsRange: [number, number]
  p99Range: [number, number]
}

export interface BenchReport {
  config: BenchOptions & { path: string, upstreams: number }
  machine: { cpus: number, node: string, loadavgBefore: number[], loadavgAfter: number[] }
  legs: LegReport[]
  /** One thread each (ours, nginx, haproxy). */
  ratios: { oursToNginx: Ratio | null, oursToHaproxy: Ratio | null, oursToDirect: Ratio | null, oursToNodeHttp: Ratio | null, oursToUndici: Ratio | null }
  /**
   * Per --threads value above 1: ours against nginx and haproxy with as many, and what the
   * threads bring each of them (ours x2 / ours, nginx x2 / nginx).
   */
  threaded: Array<{ threads: number, oursToNginx: Ratio | null, oursToHaproxy: Ratio | null, oursScaling: Ratio | null, nginxScaling: Ratio | null, haproxyScaling: Ratio | null }>
  target: { rpsAtLeast: number, p99AtMost: number, met: boolean | null }
  startedAt: string
  durationSeconds: number
}

export interface BenchHooks {
  onProgress?: (line: string) => void
  signal?: AbortSignal
}

interface Leg {
  report: LegReport
  url: string
  /** The proxy's processes (nginx's master and workers), read for CPU; empty for direct. */
  pids: number[]
}

export async function runBalancerBench (options: BenchOptions, hooks: BenchHooks = {}): Promise<BenchReport> {
  const progress = hooks.onProgress ?? (() => {})
  const signal = hooks.signal
  const started = Date.now()
  const loadavgBefore = loadavg()
  const dir = mkdtempSync(join(tmpdir(), 'bench-balancer-'))
  const references: ReferenceProxy[] = []
  let cluster: Cluster | undefined
  let generator: LoadGenerator | undefined
  try {
    progress(`starting ${options.servers} app server${options.servers === 1 ? '' : 's'} and our balancer...`)
    // /health answers the same in every mode, so it runs in memory mode, which
    // needs nothing else; /feeds runs in jwt mode: one HMAC check per request
    // and no store, so the upstreams' cost stays flat for the whole run.
    const mode = options.route === 'feeds' ? 'jwt' : 'memory'
    cluster = await startCluster({ mode, servers: options.servers, logLevel: 'warn' })
    const upstreams = cluster.servers.map((s) => s.url)
    const path = options.route === 'health' ? '/health' : '/feeds'
    const headers = options.route === 'feeds' ? { authorization: `Bearer ${await login(upstreams[0] as string)}` } : undefined
    const serverPids = cluster.servers.map((s) => s.pid as number)

    const legs: Leg[] = []
    const counted = (n: number, one: string): string => n === 1 ? `one ${one}` : `${n} ${one}s`
    for (const name of options.legs) {
      for (const threads of THREADED_LEGS.includes(name) ? options.threads : [1]) {
        signal?.throwIfAborted()
        const report = emptyLeg(name, threads)
        if (name === 'direct') {
          const first = cluster.servers[0] as Cluster['servers'][number]
          report.description = `straight to ${first.id}, no proxy`
          legs.push({ report, url: first.url, pids: [] })
        } else if (name === 'ours' && threads === 1) {
          report.description = `balancer/balancer.ts, one thread, round robin over ${upstreams.length}`
          legs.push({ report, url: cluster.url, pids: [cluster.balancer.pid as number] })
        } else if (name === 'ours') {
          progress(`starting our balancer on ${threads} threads...`)
          const proxy = await startOurBalancer(threads, upstreams)
          references.push(proxy)
          report.description = `the same, BALANCER_THREADS=${threads}: one port, one round robin`
          legs.push({ report, url: proxy.url, pids: [proxy.process.pid as number] })
        } else {
          progress(`starting ${report.label}...`)
          const outcome = await startReference(name, dir, upstreams, undefined, undefined, threads)
          if ('skipped' in outcome) {
            report.skipped = outcome.skipped
            progress(`skipping the ${report.label} leg: ${outcome.skipped}`)
            legs.push({ report, url: '', pids: [] })
            continue
          }
          references.push(outcome.proxy)
          report.description = name === 'node-http'
            ? `a bare node:http proxy (${outcome.proxy.version}), keep-alive agent, round robin over ${upstreams.length}, nothing else: the floor for ours`
            : name === 'undici'
              ? 'the same with undici\'s Pool to the upstreams, node:http to the client'
              : `${name} ${outcome.proxy.version}, ${counted(threads, name === 'nginx' ? 'worker' : 'thread')}, keep-alive upstream, round robin over ${upstreams.length}`
          const pid = outcome.proxy.process.pid as number
          // nginx's workers are the master's children: their CPU is the proxy's.
          legs.push({ report, url: outcome.proxy.url, pids: [pid, ...childrenOf(pid)] })
        }
      }
    }
    const active = legs.filter((l) => l.report.skipped === undefined)
    for (const leg of active) {
      leg.report.url = leg.url
      await checkLeg(leg, path, headers)
    }

    generator = startLoadGenerator(signal)
    const load = async (leg: Leg, seconds: number): Promise<LoadResult> =>
      await (generator as LoadGenerator).run({ url: `${leg.url}${path}`, connections: options.connections, durationSeconds: seconds, headers })

    if (options.warmupSeconds > 0) {
      progress(`warming up: ${options.warmupSeconds} s per leg`)
      for (const leg of active) await load(leg, options.warmupSeconds)
    }
    for (let round = 1; round <= options.rounds; round++) {
      // Rotate the order so that no leg always runs first, or right after the same one.
      const order = active.map((_, i) => active[(i + round - 1) % active.length] as Leg)
      for (const leg of order) {
        const proxyBefore = cpuTicks(leg.pids)
        const before = cpuTicks(serverPids)
        const result = await load(leg, options.durationSeconds)
        const after = cpuTicks(serverPids)
        const proxyAfter = cpuTicks(leg.pids)
        const perRequest = (ticks: number | null): number | null =>
          ticks === null || result.requests === 0 ? null : Math.round((ticks * 1e6 / CLK_TCK) / result.requests * 10) / 10
        const proxyTicks = leg.pids.length === 0 ? null : sumDelta(proxyBefore, proxyAfter)
        const serverTicks = sumDelta(before, after)
        leg.report.rounds.push({ round, ...result, proxyCpuUsPerRequest: perRequest(proxyTicks), serversCpuUsPerRequest: perRequest(serverTicks) })
        progress(`round ${round}/${options.rounds}  ${leg.report.label.padEnd(10)} ${String(result.rps).padStart(7)} req/s  p99 ${result.latencyMs.p99.toFixed(2)} ms  errors ${result.errors + result.non2xx}`)
      }
    }

    for (const leg of active) summarise(leg.report)
    const byName = (name: LegName, threads = 1): LegReport | undefined => legs.find((l) => l.report.name === name && l.report.threads === threads && l.report.median !== null)?.report
    const ours = byName('ours')
    const ratios = {
      oursToNginx: ratio(ours, byName('nginx')),
      oursToHaproxy: ratio(ours, byName('haproxy')),
      oursToDirect: ratio(ours, byName('direct')),
      oursToNodeHttp: ratio(ours, byName('node-http')),
      oursToUndici: ratio(ours, byName('undici'))
    }
    const threaded = options.threads.filter((n) => n > 1).map((n) => ({
      threads: n,
      oursToNginx: ratio(byName('ours', n), byName('nginx', n)),
      oursToHaproxy: ratio(byName('ours', n), byName('haproxy', n)),
      oursScaling: ratio(byName('ours', n), ours),
      nginxScaling: ratio(byName('nginx', n), byName('nginx')),
      haproxyScaling: ratio(byName('haproxy', n), byName('haproxy'))
    }))
    const vsNginx = ratios.oursToNginx
    return {
      config: { ...options, path, upstreams: upstreams.length },
      machine: { cpus: cpus().length, node: process.version, loadavgBefore, loadavgAfter: loadavg() },
      legs: legs.map((l) => l.report),
      ratios,
      threaded,
      target: {
        ...TARGET,
        met: vsNginx === null ? null : vsNginx.rps >= TARGET.rpsAtLeast && vsNginx.p99 <= TARGET.p99AtMost
      },
      startedAt: new Date(started).toISOString(),
      durationSeconds: Math.round((Date.now() - started) / 100) / 10
    }
  } finally {
    progress('stopping every process...')
    generator?.close()
    await Promise.all(references.map(async (r) => await r.process.stop()))
    await cluster?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

function emptyLeg (name: LegName, threads: number): LegReport {
  return { name, threads, label: threads === 1 ? name : `${name} x${threads}`, description: '', url: null, rounds: [], median: null, requests: 0, errors: 0, timeouts: 0, non2xx: 0 }
}

/** A process's children (Linux), e.g. nginx's workers; none where /proc cannot say. */
function childrenOf (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((s) => s !== '').map(Number)
  } catch {
    return []
  }
}

export function median (values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

function medianOrNull (values: ReadonlyArray<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null)
  return known.length === 0 ? null : round(median(known), 1)
}

function summarise (leg: LegReport): void {
  const rs = leg.rounds
  leg.median = {
    rps: Math.round(median(rs.map((r) => r.rps))),
    latencyMs: {
      p50: round(median(rs.map((r) => r.latencyMs.p50)), 3),
      p90: round(median(rs.map((r) => r.latencyMs.p90)), 3),
      p99: round(median(rs.map((r) => r.latencyMs.p99)), 3)
    },
    proxyCpuUsPerRequest: medianOrNull(rs.map((r) => r.proxyCpuUsPerRequest)),
    serversCpuUsPerRequest: medianOrNull(rs.map((r) => r.serversCpuUsPerRequest))
  }
  for (const r of rs) {
    leg.requests += r.requests
    leg.errors += r.errors
    leg.timeouts += r.timeouts
    leg.non2xx += r.non2xx
  }
}

/** Ours against another leg of the same run: ratios of the medians, plus the round-by-round spread. */
export function ratio (ours: LegReport | undefined, other: LegReport | undefined): Ratio | null {
  if (ours?.median == null || other?.median == null) return null
  const perRound = ours.rounds.flatMap((r) => {
    const o = other.rounds.find((x) => x.round === r.round)
    return o === undefined ? [] : [{ rps: r.rps / o.rps, p99: r.latencyMs.p99 / o.latencyMs.p99 }]
  })
  const range = (values: number[]): [number, number] => [round(Math.min(...values), 3), round(Math.max(...values), 3)]
  return {
    rps: round(ours.median.rps / other.median.rps, 3),
    p99: round(ours.median.latencyMs.p99 / other.median.latencyMs.p99, 3),
    p50: round(ours.median.latencyMs.p50 / other.median.latencyMs.p50, 3),
    rpsRange: range(perRound.map((r) => r.rps)),
    p99Range: range(perRound.map((r) => r.p99))
  }
}

function round (value: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

// CPU time from /proc (Linux): utime + stime, in clock ticks. Elsewhere the
// CPU columns stay empty.
const CLK_TCK = (() => {
  const run = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const value = Number(run.stdout?.trim())
  return Number.isInteger(value) && value > 0 ? value : 100
})()

function cpuTicks (pids: readonly number[]): Array<number | null> {
  return pids.map((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      // Fields after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return Number(fields[11]) + Number(fields[12])
    } catch {
      return null
    }
  })
}

function delta (before: number | null | undefined, after: number | null | undefined): number | null {
  return before == null || after == null ? null : after - before
}

function sumDelta (before: Array<number | null>, after: Array<number | null>): number | null {
  let sum = 0
  for (let i = 0; i < before.length; i++) {
    const d = delta(before[i], after[i])
    if (d === null) return null
    sum += d
  }
  return sum
}

async function login (serverUrl: string): Promise<string> {
  const body = await httpJson(`${serverUrl}/login`, 'POST', JSON.stringify({ username: 'alice', password: 'wonderland' }))
  if (body.status !== 200 || typeof body.json.token !== 'string') throw new Error(`could not log in for the feeds route: ${body.status}`)
  return body.json.token
}

/** One request through the leg before any load: it must reach an app server and get a 200. */
async function checkLeg (leg: Leg, path: string, headers: Record<string, string> | undefined): Promise<void> {
  const res = await httpJson(`${leg.url}${path}`, 'GET', undefined, headers)
  if (res.status !== 200 || !/^app-\d+$/.test(res.servedBy)) {
    throw new Error(`the ${leg.report.name} leg does not reach an app server: GET ${path} answered ${res.status}, x-served-by ${JSON.stringify(res.servedBy)}`)
  }
}

async function httpJson (url: string, method: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number, servedBy: string, json: Record<string, unknown> }> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, timeout: 5000, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        let json: Record<string, unknown> = {}
        try { json = JSON.parse(text) as Record<string, unknown> } catch {}
        resolve({ status: res.statusCode ?? 0, servedBy: String(res.headers['x-served-by'] ?? ''), json })
      })
    })
    req.once('timeout', () => { req.destroy(new Error(`${method} ${url} timed out`)) })
    req.once('error', reject)
    req.end(body)
  })
}
