import type { Assumptions } from './assumptions.ts'
import { planPostgres, planRedis, type PostgresPlan, type RedisPlan, type ScaleTarget } from './plan-stores.ts'
import type { MeasuredMode, MeasuredReport } from './read-compare.ts'

export type { ScaleTarget } from './plan-stores.ts'

/** What one unit can take before it is full: the req/s at which it fills, at the planned utilisation. */
export interface Limit {
  kind: 'store thread' | 'store memory' | 'database primary' | 'balancer CPU' | 'network' | 'one app server'
  /** req/s at which one unit is full (sessions growing with the rate, in the target's proportion). */
  rps: number
  /** The unit, in words. */
  unit: string
  /** What lifts it, in words, with the count the target needs. */
  beyond: string
  /**
   * Whether more of the same lifts it: balancer instances (and their NICs) are stateless and
   * scale out behind DNS or an L4 spreader. The others hold the shared state (one Redis node, one
   * primary, memory mode's one server) and need a change of design past them: shards, a cache,
   * sticky routing.
   */
  scalesOut: boolean
}

export interface ModePlan {
  name: string
  mode: string
  /** App-server cores (Node processes: one thread each) at the target. */
  appCores: number
  balancerCores: number
  balancerInstancesByCpu: number
  balancerInstancesByNetwork: number
  balancerInstances: number
  network: {
    /** Bytes one request moves through the balancer in each direction: request and credential in, answer out, both relayed. */
    bytesEachWay: number
    /** Client to balancer: requests with their credentials. */
    inGbit: number
    /** Balancer to client: the answers. */
    outGbit: number
    /** The credential's share of inGbit. */
    credentialGbit: number
  }
  /** memory mode: the sessions in the app servers' heaps, all together, and per server (spread by sticky routing); null elsewhere. */
  heap: { totalBytes: number, perServerBytes: number } | null
  redis: RedisPlan | null
  postgres: PostgresPlan | null
  /** Every limit that applies, lowest req/s first. */
  limits: Limit[]
  /** Where it stops scaling: the first limit reached as the rate grows. */
  first: Limit
  /** The first limit that more instances do not lift; null when nothing is shared (jwt, cookie). */
  firstShared: Limit | null
}

const ceil = (n: number): number => Number.isFinite(n) ? Math.max(0, Math.ceil(n - 1e-9)) : Number.POSITIVE_INFINITY
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

/**
 * What `m` needs at the target, and where it stops scaling. Pure arithmetic on the measured
 * figures and the assumptions, each step hand-checkable:
 * - app servers: rps × server CPU per request / utilisation, in cores (a Node process is one thread);
 * - balancer: the same with its CPU, in instances of `balancerCores` threads, or more when one
 *   instance's network would fill first;
 * - network: every request crosses the balancer twice each way (client and server side);
 * - the stores: plan-stores.ts.
 */
export function planMode (m: MeasuredMode, target: ScaleTarget, a: Assumptions, redisBytesPerSession: number | null = null): ModePlan {
  const u = a.utilisation
  const appCores = ceil(target.rps * m.serverUsPerRequest / 1e6 / u)
  const balancerCores = target.rps * m.balancerUsPerRequest / 1e6 / u
  const bytesEachWay = a.requestBytes + m.credentialBytes + a.responseBytes
  const nicBytesPerSecond = a.nicGbit * 1e9 / 8 * u
  const balancerInstancesByCpu = ceil(balancerCores / a.balancerCores)
  const balancerInstancesByNetwork = ceil(target.rps * bytesEachWay / nicBytesPerSecond)
  const balancerInstances = Math.max(1, balancerInstancesByCpu, balancerInstancesByNetwork)
  const redis = planRedis(m, target, a, redisBytesPerSession)
  const postgres = planPostgres(m, target, a)
  const heap = m.mode === 'memory'
    ? { totalBytes: target.sessions * m.bytesPerSession, perServerBytes: target.sessions * m.bytesPerSession / Math.max(1, appCores) }
    : null

  const limits: Limit[] = []
  // The balancer tier scales out (instances behind DNS or an L4 spreader): what one instance takes.
  const perInstanceCpu = m.balancerUsPerRequest > 0 ? a.balancerCores * u * 1e6 / m.balancerUsPerRequest : Number.POSITIVE_INFINITY
  limits.push({ kind: 'balancer CPU', rps: perInstanceCpu, unit: `one balancer instance (${a.balancerCores} threads)`, beyond: `more instances behind DNS or an L4 spreader: ${fmt(balancerInstances)} at the target`, scalesOut: true })
  limits.push({ kind: 'network', rps: bytesEachWay > 0 ? nicBytesPerSecond / bytesEachWay : Number.POSITIVE_INFINITY, unit: `one balancer instance's ${a.nicGbit} Gbit/s`, beyond: `more instances or faster NICs: ${fmt(balancerInstancesByNetwork)} instance${balancerInstancesByNetwork === 1 ? '' : 's'} by network at the target`, scalesOut: true })
  if (m.mode === 'memory') {
    limits.push({ kind: 'one app server', rps: m.serverUsPerRequest > 0 ? u * 1e6 / m.serverUsPerRequest : Number.POSITIVE_INFINITY, unit: 'one app server\'s one thread', beyond: `sticky routing (--strategy sticky) to ${fmt(appCores)} servers; a server that goes takes its sessions with it`, scalesOut: false })
  }
  if (redis !== null) {
    limits.push({ kind: 'store thread', rps: redis.commandsPerRequest > 0 ? redis.opsPerNode / redis.commandsPerRequest : Number.POSITIVE_INFINITY, unit: `one Redis node's command thread (${fmt(redis.opsPerNode)} commands/s)`, beyond: `shard (Redis Cluster): ${fmt(redis.primariesByOps)} primar${redis.primariesByOps === 1 ? 'y' : 'ies'} by commands at the target`, scalesOut: false })
    // Sessions (or revocations) grow with the rate, in the target's proportion.
    limits.push({ kind: 'store memory', rps: redis.entries > 0 ? target.rps * redis.entriesPerNode / redis.entries : Number.POSITIVE_INFINITY, unit: `one Redis node's ${a.storeMemoryGb} GB (${fmt(redis.entriesPerNode)} entries)`, beyond: `shard: ${fmt(redis.primariesByMemory)} primar${redis.primariesByMemory === 1 ? 'y' : 'ies'} by memory at the target`, scalesOut: false })
  }
  if (postgres !== null) {
    limits.push({
      kind: 'database primary',
      rps: postgres.usPerRequest > 0 ? a.pgPrimaryCores * u * 1e6 / postgres.usPerRequest : Number.POSITIVE_INFINITY,
      unit: `one PostgreSQL primary of ${a.pgPrimaryCores} cores`,
      beyond: m.mode === 'postgres'
        ? `every read renews the idle timeout, a write: replicas do not help. Shard the sessions table, or put a cache in front (postgres+redis-cache, postgres+local-cache); ${fmt(postgres.cores)} cores at the target`
        : `${fmt(postgres.cores)} cores at the target`,
      scalesOut: false
    })
  }
  limits.sort((x, y) => x.rps - y.rps)
  return {
    name: m.name,
    mode: m.mode,
    appCores,
    balancerCores,
    balancerInstancesByCpu,
    balancerInstancesByNetwork,
    balancerInstances,
    network: {
      bytesEachWay,
      inGbit: target.rps * (a.requestBytes + m.credentialBytes) * 8 / 1e9,
      outGbit: target.rps * a.responseBytes * 8 / 1e9,
      credentialGbit: target.rps * m.credentialBytes * 8 / 1e9
    },
    heap,
    redis,
    postgres,
    limits,
    first: limits[0] as Limit,
    firstShared: limits.find((l) => !l.scalesOut) ?? null
  }
}

/** The plan of every mode in the report. */
export function planAll (report: MeasuredReport, target: ScaleTarget, a: Assumptions): ModePlan[] {
  return report.modes.map((m) => planMode(m, target, a, report.redisBytesPerSession))
}
