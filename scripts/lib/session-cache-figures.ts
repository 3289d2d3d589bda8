/**
 * What a session cache saves, read from the app servers' own counters (/metrics): database
 * statements per request, and the share of reads the cache answered. The one reading of these
 * numbers for the walkthrough, the faults, the tests and compare.
 */

export const LOOKUP_RESULTS = ['hit', 'miss', 'renew', 'lease', 'ended', 'bypass', 'error'] as const
export type LookupResult = typeof LOOKUP_RESULTS[number]

export interface SessionCacheCounts {
  /** Authenticated requests, whatever their outcome (auth_outcomes_total). */
  requests: number
  /** Statements sent to the database (session_store_commands_total: PostgreSQL's insert, update, delete). */
  databaseStatements: number
  /** Of those, the cache's keep-alive SELECT 1 ({command="ping"}): a few a second per server, however many requests come. */
  databasePings: number
  /** What the cache did for each read (session_cache_lookups_total, either cache). */
  lookups: Record<LookupResult, number>
  /** Commands sent to a shared (Redis) cache (session_cache_commands_total). */
  cacheCommands: number
  /** Local caches told of a logout (session_cache_invalidations_total{kind="session"}), and emptied whole after their channel came back ({kind="flush"}). */
  invalidations: number
  flushes: number
}

/** Counts from the /metrics texts of some servers, summed. */
export function sessionCacheCounts (texts: readonly string[]): SessionCacheCounts {
  const total = (name: string, labels: Record<string, string> = {}): number => texts.reduce((n, text) => n + sumSamples(text, name, labels), 0)
  return {
    requests: total('auth_outcomes_total'),
    databaseStatements: total('session_store_commands_total'),
    databasePings: total('session_store_commands_total', { command: 'ping' }),
    lookups: Object.fromEntries(LOOKUP_RESULTS.map((result) => [result, total('session_cache_lookups_total', { result })])) as Record<LookupResult, number>,
    cacheCommands: total('session_cache_commands_total'),
    invalidations: total('session_cache_invalidations_total', { kind: 'session' }),
    flushes: total('session_cache_invalidations_total', { kind: 'flush' })
  }
}

/** The counts of every server, read now. */
export async function readSessionCacheCounts (serverUrls: readonly string[], timeoutMs = 2000): Promise<SessionCacheCounts> {
  const texts = await Promise.all(serverUrls.map(async (url) => {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(timeoutMs) })
    if (!res.ok) throw new Error(`${url}/metrics answered ${res.status}`)
    return await res.text()
  }))
  return sessionCacheCounts(texts)
}

/** What happened between two readings. */
export function countsBetween (before: SessionCacheCounts, after: SessionCacheCounts): SessionCacheCounts {
  return {
    requests: after.requests - before.requests,
    databaseStatements: after.databaseStatements - before.databaseStatements,
    databasePings: after.databasePings - before.databasePings,
    lookups: Object.fromEntries(LOOKUP_RESULTS.map((r) => [r, after.lookups[r] - before.lookups[r]])) as Record<LookupResult, number>,
    cacheCommands: after.cacheCommands - before.cacheCommands,
    invalidations: after.invalidations - before.invalidations,
    flushes: after.flushes - before.flushes
  }
}

/** Database statements per authenticated request: 1 in postgres mode without a cache. */
export function statementsPerRequest (counts: SessionCacheCounts): number {
  return counts.requests === 0 ? 0 : counts.databaseStatements / counts.requests
}

/** Database statements per authenticated request, the keep-alive pings left out: what the requests themselves cost the database. */
export function sessionStatementsPerRequest (counts: SessionCacheCounts): number {
  return counts.requests === 0 ? 0 : (counts.databaseStatements - counts.databasePings) / counts.requests
}

/** The share of cache lookups answered from the cache (a hit or a logout's marker). */
export function hitRatio (counts: SessionCacheCounts): number {
  const lookups = LOOKUP_RESULTS.reduce((n, r) => n + counts.lookups[r], 0)
  return lookups === 0 ? 0 : (counts.lookups.hit + counts.lookups.ended) / lookups
}

/** The sum of the samples named `name` whose labels include `labels`, in Prometheus text. */
function sumSamples (text: string, name: string, labels: Record<string, string>): number {
  let total = 0
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (match === null || match[1] !== name) continue
    const found: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[pair[1] ?? ''] = pair[2] ?? ''
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) total += Number(match[3])
  }
  return total
}
