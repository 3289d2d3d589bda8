import { parsePrometheus, sum } from '../compare/prometheus.ts'
import { startCluster, type Cluster } from '../cluster.ts'
import { measureAuthStep } from '../lib/auth-step-timing.ts'
import { balancerAllHealthy } from '../lib/probes.ts'
import { DemoClient } from './client.ts'
import { createNarrator } from './narrator.ts'
import type { ClusterSpec, Memo, StepContext } from './step.ts'
import { STEPS } from './steps/index.ts'

export interface WalkthroughOptions {
  /** The first step to run (1 to the number of steps); default 1. */
  fromStep?: number
  /** The last step to run; default the last. */
  toStep?: number
  /** App servers per cluster; default 3. */
  servers?: number
  /** The balancer's port for every cluster (so one dashboard URL follows the whole story); 0 = any free port. */
  port?: number
  write: (text: string) => void
  colour: boolean
  /** Called between steps with the next step's number and title; resolves to go on. */
  pause?: (next: { n: number, title: string }) => Promise<void>
  /** Told about each cluster as it starts or stops, so a Ctrl-C handler can stop it. */
  onCluster?: (cluster: Cluster | undefined) => void
}

export interface StepReport {
  step: number
  title: string
  mode: string
  strategy: string
  result: unknown
  lesson: string
}

const SERVER_LOG_LINES = 40
/** Requests in flight per server while the auth step is timed (scripts/lib/auth-step-timing.ts says why not one). */
const TIMING_IN_FLIGHT_PER_SERVER = 4

/**
 * Runs the steps in order on clusters it starts and stops itself, and returns
 * what each step measured. Consecutive steps that need the same cluster share
 * it; the last one is stopped when the walkthrough ends, fails or is aborted.
 */
export async function runWalkthrough (options: WalkthroughOptions): Promise<StepReport[]> {
  const from = options.fromStep ?? 1
  const to = options.toStep ?? STEPS.length
  const steps = STEPS.map((step, i) => ({ n: i + 1, step })).filter(({ n }) => n >= from && n <= to)
  const out = createNarrator(options.write, options.colour)
  const memo: Memo = { authStep: {} }
  const reports: StepReport[] = []
  // The servers' own log lines stay out of the story, but are kept to explain a failure.
  const recentLogs: string[] = []
  let current: { spec: ClusterSpec, cluster: Cluster } | undefined

  async function clusterFor (spec: ClusterSpec): Promise<Cluster> {
    if (current !== undefined && sameSpec(current.spec, spec)) return current.cluster
    if (current !== undefined) {
      const old = current
      current = undefined
      options.onCluster?.(undefined)
      await old.cluster.stop()
    }
    const count = options.servers ?? 3
    out.note(`[starting ${describeCluster(spec, count)}…]`)
    const cluster = await startCluster({
      ...spec,
      servers: count,
      port: options.port ?? 0,
      logLevel: 'warn',
      healthIntervalMs: 250,
      // Generous: on a busy machine a slow answer must not count as a dead server (a crash is
      // a refused connection, seen at once either way), or sticky pins would move for nothing.
      healthTimeoutMs: 2000,
      onLog: (source, line) => {
        recentLogs.push(`${source} | ${line}`)
        if (recentLogs.length > SERVER_LOG_LINES) recentLogs.shift()
      }
    })
    current = { spec, cluster }
    options.onCluster?.(cluster)
    out.verbatim([`balancer ${cluster.url}   dashboard ${cluster.url}/_balancer/`], 'gray')
    return cluster
  }

  function contextFor (cluster: Cluster): StepContext {
    // A context whose cluster was switched away from would send to processes that are gone.
    const live = (): void => {
      if (current?.cluster !== cluster) throw new Error('this cluster was stopped by switchCluster: use the context it returned')
    }
    return {
      cluster,
      out,
      memo,
      client: (user) => {
        live()
        return new DemoClient(cluster.url, user, (answer, quiet) => { if (!quiet) out.answer(answer) })
      },
      settle: async () => { await settle(cluster) },
      numberOf: (step) => {
        const at = STEPS.indexOf(step)
        if (at < 0) throw new Error(`the step "${step.title}" is not in steps/index.ts`)
        return at + 1
      },
      server: (id) => {
        const server = cluster.servers.find((s) => s.id === id)
        if (server === undefined) throw new Error(`no server named ${String(id)} in this cluster`)
        return server
      },
      counter: async (name, labels) => {
        live()
        return await counter(cluster, name, labels)
      },
      timeAuthStep: async (token) => {
        live()
        return await measureAuthStep({ url: cluster.url, token, inFlight: TIMING_IN_FLIGHT_PER_SERVER * cluster.servers.length })
      },
      switchCluster: async (spec) => {
        const next = await clusterFor(spec)
        await settle(next)
        return contextFor(next)
      }
    }
  }

  try {
    for (const [i, { n, step }] of steps.entries()) {
      out.heading(n, STEPS.length, step.title)
      const cluster = await clusterFor(step.cluster)
      await settle(cluster)
      const { result, lesson } = await step.run(contextFor(cluster))
      out.lesson(lesson)
      reports.push({ step: n, title: step.title, mode: step.cluster.mode, strategy: step.cluster.strategy, result, lesson })
      const next = steps[i + 1]
      if (next !== undefined) await options.pause?.({ n: next.n, title: next.step.title })
    }
  } catch (err) {
    if (recentLogs.length > 0) out.note(`The servers' last log lines:\n${recentLogs.join('\n')}`)
    throw err
  } finally {
    if (current !== undefined) {
      options.onCluster?.(undefined)
      await current.cluster.stop()
    }
  }
  return reports
}

/** The spec with its keys in one order, for comparing two specs. */
function canonical (spec: ClusterSpec): string {
  const entries = Object.entries(spec).filter(([, value]) => value !== undefined).sort(([a], [b]) => a.localeCompare(b))
  return JSON.stringify(entries.map(([key, value]) => [key, typeof value === 'object' ? Object.entries(value).sort(([a], [b]) => a.localeCompare(b)) : value]))
}

function sameSpec (a: ClusterSpec, b: ClusterSpec): boolean {
  return canonical(a) === canonical(b)
}

/** "3 app servers in jwt mode behind a round-robin balancer, with JWT_REVOCATION=redis, and a private redis-server" (or PostgreSQL) */
function describeCluster (spec: ClusterSpec, count: number): string {
  const settings = [
    ...(spec.sessionTtlSeconds === undefined ? [] : [`SESSION_TTL_SECONDS=${spec.sessionTtlSeconds}`]),
    ...(spec.sessionCache === undefined ? [] : [`SESSION_CACHE=${spec.sessionCache}`]),
    ...(spec.signing === undefined ? [] : [`JWT_SIGNING=${spec.signing}`]),
    ...Object.entries(spec.serverEnv ?? {}).map(([name, value]) => `${name}=${value}`),
    ...(spec.jwtRevocation === true ? ['JWT_REVOCATION=redis'] : []),
    // Only the kids: the secrets are the cluster's own and never printed.
    ...(spec.jwtSecrets === undefined ? [] : [`JWT_SECRETS (kid ${spec.jwtSecrets.split(',').map((k) => k.split(':')[0] ?? '').join(', ')})`]),
    ...(spec.loginThrottleStore === undefined ? [] : [`LOGIN_THROTTLE_STORE=${spec.loginThrottleStore}`])
  ]
  const eddsa = spec.mode === 'jwt' && spec.signing === 'eddsa'
  const redis = spec.mode === 'redis' || spec.jwtRevocation === true || spec.loginThrottleStore === 'redis' || spec.sessionCache === 'redis'
  // eddsa: the issuer is a process of its own, with its settings, and its Redis (refresh tokens).
  const issuerSettings = Object.entries(spec.issuerEnv ?? {}).map(([name, value]) => `${name}=${value}`)
  const store = eddsa
    ? `, an issuer${issuerSettings.length === 0 ? '' : ` with ${issuerSettings.join(', ')}`} holding the private key, and a private redis-server for its refresh tokens`
    : redis ? ', and a private redis-server' : spec.mode === 'postgres' ? ', and a private PostgreSQL' : ''
  return `${count} app servers in ${spec.mode} mode behind a ${spec.strategy} balancer` +
    `${settings.length === 0 ? '' : `, with ${settings.join(', ')}`}${store}`
}

/** Until every server process runs and the balancer has seen each one healthy. */
async function settle (cluster: Cluster, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (cluster.servers.every((s) => s.running) && await balancerAllHealthy(cluster.url)) return
    if (Date.now() > deadline) throw new Error(`the cluster did not settle within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A Prometheus counter summed over the samples whose labels include `labels`, reading each server directly. */
async function counter (cluster: Cluster, name: string, labels: Record<string, string> = {}): Promise<{ total: number, byServer: Record<string, number> }> {
  const byServer: Record<string, number> = {}
  await Promise.all(cluster.servers.map(async (server) => {
    const text = await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(2000) }).then(async (r) => await r.text())
    byServer[server.id] = sum(parsePrometheus(text), name, labels)
  }))
  const ordered = Object.fromEntries(cluster.servers.map((s) => [s.id, byServer[s.id] ?? 0]))
  return { total: Object.values(ordered).reduce((a, b) => a + b, 0), byServer: ordered }
}
