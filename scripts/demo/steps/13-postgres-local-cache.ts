import { measureLogoutReach } from '../../lib/logout-reach.ts'
import { countsBetween, readSessionCacheCounts } from '../../lib/session-cache-figures.ts'
import { times } from '../requests.ts'
import type { ClusterSpec, Step, StepContext } from '../step.ts'
import { tally, type Tally } from '../tally.ts'
import { list } from '../words.ts'

/** How long a cached session is kept here: short, so the stale window ends within the step. */
const CACHE_TTL_SECONDS = 4
/** Reads of the logged-out session in flight at once, through the balancer, while it is measured. */
const READS_IN_FLIGHT = 3

/** One logout with per-server caches, and how far it reached. */
export interface LogoutReachFigures {
  /** alice's reads before the logout, and what they cost the database, by the servers' own counters. */
  reads: Tally
  readStatements: number
  readHits: number
  logoutServedBy: string
  /** The logout's own round trip. */
  logoutMs: number
  /** Reads of the old session begun after the logout was answered: in all, and accepted, per server. */
  readsAfter: number
  acceptedAfter: Record<string, number>
  /** From the logout's answer to the end of the last read accepted anywhere (undefined: none after it was sent). */
  lastAcceptedMs: number | undefined
  lastAcceptedByServer: Record<string, number>
  /** A few reads shown once it was over. */
  afterwards: Tally
}

export interface PostgresLocalCache {
  withoutInvalidation: LogoutReachFigures
  withInvalidation: LogoutReachFigures
}

const spec = (invalidation: 'none' | 'pubsub'): ClusterSpec => ({
  mode: 'postgres',
  strategy: 'round-robin',
  sessionCache: 'local',
  // PG_QUERY_TIMEOUT_MS is also how long a cache trusts the database without hearing from it; the
  // reads below keep the machine busy, and a ping that came late would send some read to the
  // database, ending the stale window early by luck. 2 s keeps the story to the entries' TTL.
  serverEnv: { SESSION_CACHE_INVALIDATION: invalidation, SESSION_CACHE_TTL_SECONDS: String(CACHE_TTL_SECONDS), PG_QUERY_TIMEOUT_MS: '2000' }
})

/** alice logs in, reads on every server (filling their caches), logs out while her old token keeps being read. */
async function logoutAcross (ctx: StepContext, afterMs: number): Promise<LogoutReachFigures> {
  const n = ctx.cluster.servers.length
  const urls = ctx.cluster.servers.map((s) => s.url)
  const alice = ctx.client('alice')
  await alice.login()
  const token = alice.token ?? ''
  const before = await readSessionCacheCounts(urls)
  const updatesBefore = await ctx.counter('session_store_commands_total', { command: 'update' })
  const reads = tally(await times(2 * n, async () => await alice.feeds()))
  const cost = countsBetween(before, await readSessionCacheCounts(urls))
  const updates = (await ctx.counter('session_store_commands_total', { command: 'update' })).total - updatesBefore.total
  const others = cost.databaseStatements - updates
  ctx.out.note(`The servers' counters: ${cost.lookups.hit} of ${reads.total} reads answered from the caches (session_cache_lookups_total), ${updates} UPDATE${updates === 1 ? '' : 's'} for the others (a server's first read of a session it had not cached)${others > 0 ? `, and ${others} SELECT 1 from servers making sure the database still answers (a cache serves only while it does)` : ''}.`)
  ctx.out.say(`Alice logs out. From just before it until ${(afterMs / 1000).toFixed(1)} s after, her old token is read ${READS_IN_FLIGHT} at a time through the balancer (not shown, counted).`)
  const reach = await measureLogoutReach({
    targets: [ctx.cluster.url],
    token,
    inFlightPerTarget: READS_IN_FLIGHT,
    beforeMs: 200,
    afterMs,
    logout: async () => {
      const answer = await alice.logout()
      return { status: answer.status, servedBy: answer.servedBy }
    }
  })
  const acceptedAfter = Object.fromEntries(Object.entries(reach.afterLogout).map(([server, c]) => [server, c.accepted]))
  const readsAfter = Object.values(reach.afterLogout).reduce((a, c) => a + c.total, 0)
  ctx.out.note(`Reads begun after the logout was answered: ${readsAfter}; accepted: ${Object.entries(acceptedAfter).sort().map(([s, k]) => `${s} ${k}`).join(', ')}.`)
  ctx.out.say('Alice\'s client tries her token on every server once more:')
  const afterwards = tally(await times(n, async () => await alice.feeds()))
  return {
    reads,
    readStatements: cost.databaseStatements,
    readHits: cost.lookups.hit,
    logoutServedBy: reach.logoutServedBy ?? '?',
    logoutMs: reach.logoutAnsweredAt - reach.logoutSentAt,
    readsAfter,
    acceptedAfter,
    lastAcceptedMs: reach.lastAcceptedMs,
    lastAcceptedByServer: reach.lastAcceptedByServer,
    afterwards
  }
}

const seconds = (ms: number | undefined): string => ms === undefined ? '0' : (ms / 1000).toFixed(1)

export const postgresLocalCache: Step<PostgresLocalCache> = {
  title: 'postgres with a cache in each server: a logout the others never hear of',
  cluster: spec('none'),
  async run (ctx) {
    ctx.out.say(`Sessions live in PostgreSQL again, and every server keeps a small cache of them in its own memory (SESSION_CACHE=local, entries kept ${CACHE_TTL_SECONDS} s), so most reads never reach the database. Nothing tells a server's cache about a logout on another server (SESSION_CACHE_INVALIDATION=none). Alice logs in and reads her feed on every server.`)
    ctx.out.blank()
    const withoutInvalidation = await logoutAcross(ctx, (CACHE_TTL_SECONDS + 1) * 1000)
    ctx.out.blank()

    ctx.out.say('The same cluster, but now a logout tells every cache: the DELETE sends a NOTIFY in the same statement, and each server LISTENs for it on a connection of its own (SESSION_CACHE_INVALIDATION=pubsub).')
    const next = await ctx.switchCluster(spec('pubsub'))
    const withInvalidation = await logoutAcross(next, 1000)

    const w = withoutInvalidation
    const stale = Object.entries(w.acceptedAfter).filter(([, k]) => k > 0).map(([s]) => s).sort()
    const staleCount = Object.values(w.acceptedAfter).reduce((a, b) => a + b, 0)
    const p = withInvalidation
    const lateCount = Object.values(p.acceptedAfter).reduce((a, b) => a + b, 0)
    const without = stale.length === 0
      ? `Without invalidation, no server accepted alice after her logout this time (${w.readsAfter} reads)`
      : `Without invalidation, the logout on ${w.logoutServedBy} left ${list(stale)} accepting alice's session for up to ${seconds(w.lastAcceptedMs)} s more (${staleCount} of ${w.readsAfter} reads after the logout accepted), until their entries expired: the post's "invalidate everywhere" problem, back`
    const last = p.lastAcceptedMs
    const withIt = lateCount > 0
      ? `${lateCount} of ${p.readsAfter} reads begun after the logout was answered ${lateCount === 1 ? 'was' : 'were'} accepted, the last ending ${(last ?? 0).toFixed(1)} ms after it: that long for the NOTIFY to reach every server`
      : `none of the ${p.readsAfter} reads begun after the logout was answered was accepted${last === undefined ? ', nor any sent while it was in flight' : ` (the last acceptance, of a read sent while the logout was in flight, ended ${Math.abs(last).toFixed(1)} ms ${last > 0 ? 'after' : 'before'} its answer)`}`
    return {
      result: { withoutInvalidation, withInvalidation },
      lesson: `With a cache in each server, ${w.readHits} of ${w.reads.total} reads never reached the database, where postgres mode alone costs one UPDATE each. ${without}. With PostgreSQL's NOTIFY telling every server, ${withIt}. Fewer database reads, one more thing to keep in sync: the post's point about a separate cache, exactly.`
    }
  }
}
