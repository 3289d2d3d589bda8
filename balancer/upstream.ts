// One app server as the balancer knows it: its address, parsed once, its health, its counters.
import { createHash } from 'node:crypto'
import { noAnswers } from './answer-counts.ts'
import type { AnswerCounts } from './answer-counts.ts'

export interface UpstreamStats {
  url: string
  healthy: boolean
  /** Proxied requests sent to this upstream, retries included. */
  requests: number
  /** Proxied requests that failed (refused, reset, timed out) plus failed health checks. */
  failures: number
  /**
   * The answers clients got from it, by class, since the balancer started: its own status, or
   * the balancer's 502/504 when it failed them (the last upstream tried). Not the contract's: added.
   */
  answers: AnswerCounts
}

/** What the dashboard knows of an upstream: its stats, its sticky pin, and what its /health said. */
export interface UpstreamView extends UpstreamStats {
  pin: string
  servedBy: string | null
  mode: string | null
  store: string | null
}

export interface Upstream {
  readonly url: string
  readonly healthUrl: string
  /** Parsed once, so a proxied request needs no URL parse. */
  readonly origin: string
  /** The upstream URL's path ('' for none), put before every request's path. */
  readonly basePath: string
  healthy: boolean
  requests: number
  failures: number
  /** Counted by the proxy as each answer's status goes out (countAnswer). */
  readonly answers: AnswerCounts
  /** Failed health checks since the last good one (see HEALTH_FALL in health.ts). */
  probeFailures: number
  /** The probe in flight, if any: a second check joins it instead of piling up. */
  probe: Promise<void> | undefined
  /** Out of the set (setUpstreams): requests in flight to it finish, nothing new goes there. */
  removed: boolean
  /** The sticky cookie's value for this upstream: a hash, so no address leaks to clients. */
  readonly pin: string
  /** What its last /health answer said about it, for the dashboard. */
  health: { servedBy: string | null, mode: string | null, store: string | null }
}

/** An upstream from a URL that parseUpstreams (config.ts) has checked: healthy until shown otherwise. */
export function createUpstream (url: string): Upstream {
  const parsed = new URL(url)
  return {
    url,
    healthUrl: `${url}/health`,
    origin: parsed.origin,
    basePath: parsed.pathname.replace(/\/+$/, ''),
    healthy: true,
    requests: 0,
    failures: 0,
    answers: noAnswers(),
    probeFailures: 0,
    probe: undefined,
    removed: false,
    pin: createHash('sha256').update(url).digest('base64url').slice(0, 10),
    health: { servedBy: null, mode: null, store: null }
  }
}

/** What `GET /_balancer/stats` shows of an upstream (the contract's fields). */
export function statsOf (u: Upstream): UpstreamStats {
  return { url: u.url, healthy: u.healthy, requests: u.requests, failures: u.failures, answers: { ...u.answers } }
}

export function viewOf (u: Upstream): UpstreamView {
  return { ...statsOf(u), pin: u.pin, ...u.health }
}
