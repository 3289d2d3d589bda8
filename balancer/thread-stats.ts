// With threads, each one counts the requests it proxied; the leader adds them up for
// /_balancer/stats and the dashboard. Health is the leader's: its checks decide for everyone.
import { noAnswers } from './answer-counts.ts'
import type { AnswerCounts } from './answer-counts.ts'
import type { AnswerTotals, BalancerStats, ThreadShare } from './balancer.ts'
import type { ThreadStats } from './thread-role.ts'
import type { UpstreamStats } from './upstream.ts'

/** The leader's stats (thread 0) with every other thread's counts added, and each thread's share. */
export function mergeStats (own: BalancerStats, others: readonly ThreadStats[]): BalancerStats {
  const pools: BalancerStats['pools'] = {}
  for (const [name, pool] of Object.entries(own.pools)) {
    pools[name] = {
      strategy: pool.strategy,
      upstreams: pool.upstreams.map((u) => addUpstream(u, others.map((o) => o.stats?.pools[name]?.upstreams.find((x) => x.url === u.url))))
    }
  }
  const ownAnswers = { ...own.ownAnswers }
  for (const o of others) if (o.stats !== undefined) addAnswers(ownAnswers, o.stats.ownAnswers)
  const threads: ThreadShare[] = [
    { thread: 0, answered: true, upstreams: own.upstreams, ownAnswers: own.ownAnswers },
    ...others.map((o) => ({ thread: o.thread, answered: o.stats !== undefined, upstreams: o.stats?.upstreams ?? [], ownAnswers: o.stats?.ownAnswers ?? noAnswers() }))
  ]
  const main = pools.default ?? { strategy: own.strategy, upstreams: [] }
  return { strategy: main.strategy, upstreams: main.upstreams, ownAnswers, pools, routes: own.routes, threads }
}

/** This thread's totals with the others' added. */
export function addTotals (own: AnswerTotals, others: readonly AnswerTotals[]): AnswerTotals {
  const answers: Record<string, AnswerCounts> = {}
  for (const [url, counts] of Object.entries(own.answers)) answers[url] = { ...counts }
  const ownAnswers = { ...own.ownAnswers }
  for (const other of others) {
    // Only the URLs this thread knows: one another thread still counts for has left the set.
    for (const [url, counts] of Object.entries(other.answers)) {
      const sum = answers[url]
      if (sum !== undefined) addAnswers(sum, counts)
    }
    addAnswers(ownAnswers, other.ownAnswers)
  }
  return { answers, ownAnswers }
}

function addUpstream (u: UpstreamStats, shares: ReadonlyArray<UpstreamStats | undefined>): UpstreamStats {
  const sum: UpstreamStats = { url: u.url, healthy: u.healthy, requests: u.requests, failures: u.failures, answers: { ...u.answers } }
  for (const share of shares) {
    if (share === undefined) continue
    sum.requests += share.requests
    sum.failures += share.failures
    addAnswers(sum.answers, share.answers)
  }
  return sum
}

function addAnswers (into: AnswerCounts, from: AnswerCounts): void {
  into.accepted += from.accepted
  into.refused += from.refused
  into.unavailable += from.unavailable
  into.other += from.other
}
