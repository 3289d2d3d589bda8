import { baseMode } from './mode-names.ts'
import { storeOf } from './modes.ts'
import { dec, int, pct, typicalAuthUs, us, type TableData } from './report-format.ts'
import type { CompareReport, ModeResult } from './run-compare.ts'

/**
 * The report's parts for the rows beyond the first four: the store each mode asks (Redis or
 * PostgreSQL) and its round trips, what a cache in front of PostgreSQL saves and how much of the
 * database's latency it hides, the encrypted cookie, and the issuer's side of jwt-eddsa (what a
 * refresh costs it, and EdDSA's check against HS256's). Tables for reportSections, and plain words.
 */

const isCache = (r: ModeResult): boolean => r.sessionCache != null || /^postgres\+/.test(baseMode(r.mode))
const byBase = (report: CompareReport, mode: string): ModeResult | undefined => report.results.find((r) => r.mode === mode) ?? report.results.find((r) => baseMode(r.mode) === mode)
const latencyMs = (report: CompareReport): number => report.config.storeLatencyMs ?? report.config.redisLatencyMs ?? 0

/** What the "store trips/req" column counts in a mode: the one store each request may ask. */
export function storeName (mode: string): string {
  const store = storeOf(baseMode(mode))
  return store === 'postgres' ? 'PostgreSQL statements' : store === 'redis' ? 'Redis commands' : 'none'
}

/** The share of postgres's auth step a cache row saved, when the same report has a postgres row: 1 - cache / postgres, on the medians. */
export function latencyHidden (report: CompareReport, r: ModeResult): number | null {
  const postgres = byBase(report, 'postgres')
  if (postgres === undefined || postgres === r) return null
  const base = typicalAuthUs(postgres).us
  return base > 0 ? 1 - typicalAuthUs(r).us / base : null
}

function cacheTable (report: CompareReport): TableData {
  const postgres = byBase(report, 'postgres')
  return {
    header: ['mode', 'DB statements/req', 'cache hit ratio', 'cache cmd/req', 'auth µs p50', 'postgres auth µs p50', 'database latency hidden'],
    rows: report.results.filter(isCache).map((r) => {
      const hidden = latencyHidden(report, r)
      return [
        r.mode,
        dec(r.storeCommandsPerRequest, 3),
        r.sessionCache == null ? '-' : pct(r.sessionCache.hitRatio),
        r.sessionCache == null ? '-' : dec(r.sessionCache.cacheCommandsPerRequest, 2),
        us(typicalAuthUs(r).us),
        postgres === undefined ? '-' : us(typicalAuthUs(postgres).us),
        hidden === null ? '-' : pct(hidden)
      ]
    }),
    leftColumns: 1
  }
}

function issuerTable (report: CompareReport): TableData {
  const hs256 = byBase(report, 'jwt')
  return {
    header: ['mode', 'logins by', 'refreshes', 'refresh ms p50/p99', 'issuer CPU µs/refresh', 'auth µs p50 EdDSA', 'auth µs p50 HS256 (jwt)'],
    rows: report.results.filter((r) => baseMode(r.mode) === 'jwt-eddsa').map((r) => {
      const f = r.refresh ?? null
      return [
        r.mode,
        Object.entries(r.loginsServedBy ?? {}).map(([id, n]) => `${id} ${int(n)}`).join(', ') || '-',
        f === null ? '-' : `${int(f.refreshes)}${f.failed > 0 ? ` (${int(f.failed)} failed)` : ''}`,
        f === null ? '-' : `${dec(f.latencyMs.p50, 2)} / ${dec(f.latencyMs.p99, 2)}`,
        f?.issuerCpuUsPerRefresh == null ? '-' : int(f.issuerCpuUsPerRefresh),
        us(typicalAuthUs(r).us),
        hs256 === undefined ? '-' : us(typicalAuthUs(hs256).us)
      ]
    }),
    leftColumns: 2
  }
}

export function storeSections (report: CompareReport): Array<{ id: string, title: string, table: TableData, notes: string[] }> {
  const sections = []
  if (report.results.some(isCache)) {
    const ms = latencyMs(report)
    sections.push({
      id: 'session-caches',
      title: 'A cache in front of PostgreSQL (postgres+redis-cache: one shared Redis; postgres+local-cache: one per server, told of logouts over NOTIFY), from the servers\' counters:',
      table: cacheTable(report),
      notes: [`(DB statements: reads the cache missed, renewals and the cache's pings, per request; hit ratio: reads answered by the cache; cache cmd/req: commands to the shared Redis; hidden: 1 - cache p50 / postgres p50${ms > 0 ? `, with every store ${ms} ms away, the Redis cache too` : ''})`]
    })
  }
  if (report.results.some((r) => baseMode(r.mode) === 'jwt-eddsa')) {
    const f = report.results.find((r) => r.refresh != null)?.refresh
    sections.push({
      id: 'issuer',
      title: 'jwt-eddsa: an issuer alone signs (Ed25519), the app servers verify with its JWKS; logins and refreshes go to the issuer, reads to the app servers:',
      table: issuerTable(report),
      notes: f == null ? [] : [`(refreshes: a burst after the measured load, ${f.concurrency} chains side by side, each presenting the refresh token the last refresh returned, for ${dec(f.seconds, 1)} s)`]
    })
  }
  return sections
}

const authText = (r: ModeResult): string => `${us(typicalAuthUs(r).us)} µs`

/** Plain words for postgres, the caches, cookie and jwt-eddsa; empty for the rows they do not have. */
export function storeWords (report: CompareReport): string[] {
  const lines: string[] = []
  const postgres = byBase(report, 'postgres')
  const redis = byBase(report, 'redis')
  const jwt = byBase(report, 'jwt')
  const ms = latencyMs(report)
  if (postgres !== undefined) {
    lines.push(`postgres: ${dec(postgres.storeCommandsPerRequest, 2)} PostgreSQL statements per request (one UPDATE ... RETURNING reads the session and renews its idle timeout) and an auth step of ${authText(postgres)} (${typicalAuthUs(postgres).what}` +
      `${redis === undefined ? '' : `; vs ${authText(redis)} for redis's one GETEX`})${ms > 0 ? `, with the database ${ms} ms away` : ''}: a database round trip on every request, and the sessions survive a restart of the store.`)
  }
  for (const r of report.results.filter(isCache)) {
    const hidden = latencyHidden(report, r)
    const shared = baseMode(r.mode) === 'postgres+redis-cache'
    lines.push(`${r.mode}: ${dec(r.storeCommandsPerRequest, 3)} database statements per request${r.sessionCache == null ? '' : `, ${pct(r.sessionCache.hitRatio)} of reads answered by the cache`}, auth step ${authText(r)}` +
      (hidden === null ? '' : `: it hid ${pct(Math.max(0, hidden))} of postgres's auth step (${authText(postgres as ModeResult)})`) +
      (shared
        ? `. A shared cache takes the reads off the database, not the round trip: each read is a Redis command instead${ms > 0 ? ', as far away as the database here' : ''}.`
        : '. A cache in each server answers from its own heap: no round trip at all, and a logout must reach every server (NOTIFY) or the others go on accepting the session.'))
  }
  const cookie = byBase(report, 'cookie')
  if (cookie !== undefined) {
    const token = cookie.memoryCost.credentialBytes
    lines.push(`cookie: no store and ${dec(cookie.storeCommandsPerRequest, 2)} round trips; the session travels sealed (encrypted and authenticated)${token === null ? '' : ` in ${int(token)} bytes`}, and opening it took ${authText(cookie)}` +
      `${jwt === undefined ? '' : ` (jwt's HMAC check: ${authText(jwt)})`}. Unlike a JWT the client cannot read it; like one, a logout cannot take it back.`)
  }
  for (const r of report.results.filter((x) => baseMode(x.mode) === 'jwt-eddsa')) {
    const by = Object.keys(r.loginsServedBy ?? {})
    const f = r.refresh ?? null
    lines.push(`${r.mode}: the logins were answered by ${by.length === 0 ? 'an unknown process' : by.join(', ')}, and no app server holds a key that can sign; checking an Ed25519 signature took ${authText(r)}` +
      `${jwt === undefined ? '' : ` against ${authText(jwt)} for HS256 in jwt`}, ${dec(r.storeCommandsPerRequest, 2)} store round trips per request.` +
      (f === null ? '' : ` A refresh cost the issuer ${dec(f.latencyMs.p50, 2)} ms (p50, through the balancer)${f.issuerCpuUsPerRefresh === null ? '' : ` and ${int(f.issuerCpuUsPerRefresh)} µs of its CPU`}: the price of short access tokens is one of these per client every ACCESS_TTL_SECONDS.`))
  }
  return lines
}
