// What a balancer thread is, with BALANCER_THREADS above 1 (threads.ts): the leader (the main
// thread) runs the health checks, the dashboard and /_balancer/stats, and proxies like the others;
// each follower (a worker thread) proxies, takes the health the leader found, and relays the
// admin paths to it. All of them share the round-robin positions (`cursors`).
import type http from 'node:http'
import type { AnswerTotals, BalancerStats } from './balancer.ts'
import type { EventHub } from './events.ts'
import type { UpstreamView } from './upstream.ts'

export type ThreadRole = LeaderRole | FollowerRole

export interface LeaderRole {
  kind: 'leader'
  /** One Int32 per pool on a SharedArrayBuffer: the default pool's round-robin position, then each of config.pools'. */
  cursors: Int32Array
  peers: ThreadPeers
}

/** The leader's side of the other threads (threads.ts). */
export interface ThreadPeers {
  /** Every other thread's stats, asked for now. */
  stats (): Promise<ThreadStats[]>
  /** Every other thread's answer counts as it last reported them. */
  totals (): AnswerTotals[]
  /** The leader's checks changed an upstream's health: every thread acts on it. */
  onUpstreamChange (pool: string, view: UpstreamView): void
  /** The leader's set of upstreams changed (DNS): every thread takes it. */
  onUpstreamsChange (pool: string, urls: string[]): void
  /** A dashboard opened, or the last one closed: the others report their requests only while one is open. */
  onEventsActive (active: boolean): void
}

/** One thread's stats, or none when it did not answer in time. */
export interface ThreadStats {
  thread: number
  stats: BalancerStats | undefined
}

export interface FollowerRole {
  kind: 'follower'
  cursors: Int32Array
  /** Hands this thread's requests to the leader's dashboard while one is open. */
  events: EventHub
  /** Sends a /_balancer/* request to the leader and its answer back. */
  admin (req: http.IncomingMessage, res: http.ServerResponse): void
  /** This thread's proxy could not connect to an upstream: the leader takes it out for everyone. */
  markedDown (pool: string, url: string): void
}
