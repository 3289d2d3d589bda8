/** Just enough of the Prometheus text format to read the app servers' own counters. */

export interface Sample { name: string, labels: Record<string, string>, value: number }

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export function parsePrometheus (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = LINE.exec(line)
    if (match === null) continue
    const labels: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(LABEL)) labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, (_, c: string) => c === 'n' ? '\n' : c)
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) })
  }
  return samples
}

/** The sum of every sample named `name` whose labels include `labels`; 0 when there is none. */
export function sum (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let total = 0
  for (const s of samples) {
    if (s.name !== name) continue
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value
  }
  return total
}

/** What one app server has counted so far: the numbers `npm run compare` takes differences of. */
export interface ServerCounters {
  /** The server's SERVER_ID (the `server` label every sample carries). */
  server: string
  mode: string
  /** Authenticated requests let through (each a 200 on /feeds). */
  ok: number
  /** Authenticated requests refused (each a 401). */
  unauthorized: number
  /** Requests the session store could not answer (each a 503). */
  unavailable: number
  /** auth_duration_seconds: total seconds spent in the auth step, and how many steps. */
  authSeconds: number
  authCount: number
  /** session_store_commands_total: round trips to the session store (Redis commands, PostgreSQL statements). */
  storeCommands: number
  /** session_cache_lookups_total (postgres mode with a cache): every read the cache saw, and those it answered (a hit, or a logout's marker: scripts/lib/session-cache-figures.ts hitRatio). */
  cacheLookups: number
  cacheHits: number
  /** session_cache_commands_total: commands sent to a shared (Redis) cache. */
  cacheCommands: number
  /** process_cpu_seconds_total: the server process's CPU time, user and system. */
  cpuSeconds: number
}

export function readCounters (text: string): ServerCounters {
  const samples = parsePrometheus(text)
  const any = samples.find((s) => s.labels.server !== undefined)
  return {
    server: any?.labels.server ?? 'unknown',
    mode: any?.labels.mode ?? 'unknown',
    ok: sum(samples, 'auth_outcomes_total', { outcome: 'ok' }),
    unauthorized: sum(samples, 'auth_outcomes_total', { outcome: 'unauthorized' }),
    unavailable: sum(samples, 'auth_outcomes_total', { outcome: 'unavailable' }),
    authSeconds: sum(samples, 'auth_duration_seconds_sum'),
    authCount: sum(samples, 'auth_duration_seconds_count'),
    storeCommands: sum(samples, 'session_store_commands_total'),
    cacheLookups: sum(samples, 'session_cache_lookups_total'),
    cacheHits: sum(samples, 'session_cache_lookups_total', { result: 'hit' }) + sum(samples, 'session_cache_lookups_total', { result: 'ended' }),
    cacheCommands: sum(samples, 'session_cache_commands_total'),
    cpuSeconds: sum(samples, 'process_cpu_seconds_total')
  }
}

/** after - before, field by field: what a server did during a run. */
export function difference (after: ServerCounters, before: ServerCounters | undefined): ServerCounters {
  if (before === undefined) return after
  return {
    server: after.server,
    mode: after.mode,
    ok: after.ok - before.ok,
    unauthorized: after.unauthorized - before.unauthorized,
    unavailable: after.unavailable - before.unavailable,
    authSeconds: after.authSeconds - before.authSeconds,
    authCount: after.authCount - before.authCount,
    storeCommands: after.storeCommands - before.storeCommands,
    cacheLookups: after.cacheLookups - before.cacheLookups,
    cacheHits: after.cacheHits - before.cacheHits,
    cacheCommands: after.cacheCommands - before.cacheCommands,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds
  }
}
