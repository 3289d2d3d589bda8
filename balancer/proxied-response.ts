// What the balancer keeps about a proxied request while it is in flight. It lives on the
// client's response object under symbols, so the hot path allocates no closure and no side
// table: one handler object per attempt (proxy.ts), shared listeners that read `this`.
import type http from 'node:http'
import type { Dispatcher } from 'undici'
import type { PinnedResponse } from './strategy.ts'
import type { Upstream } from './upstream.ts'

export const kAttempt = Symbol('balancer.attempt')
export const kTries = Symbol('balancer.tries')
export const kHasBody = Symbol('balancer.hasBody')
// Set only while a dashboard watches: when the request arrived, and what the
// upstream's answer said that the dashboard shows (request-events.ts).
export const kStarted = Symbol('balancer.started')
export const kSeen = Symbol('balancer.seen')
// Set only while the upstream is paused because the client stopped reading.
export const kStallTimer = Symbol('balancer.stallTimer')

/** What the shared listeners and the dashboard need of an attempt (the class is in proxy.ts). */
export interface AttemptState {
  readonly upstream: Upstream
  controller: Dispatcher.DispatchController | undefined
}

export interface ProxiedResponse extends http.ServerResponse, PinnedResponse {
  /** The attempt in flight (or the last one); an earlier attempt's late events are ignored. */
  [kAttempt]: AttemptState | undefined
  [kTries]: number
  /**
   * Whether the request has a body, read from its headers before forwardedHeaders() drops
   * Transfer-Encoding from them for the upstream hop.
   */
  [kHasBody]: boolean
  [kStarted]?: number
  [kSeen]?: { servedBy: string | string[] | undefined, authenticate: string | string[] | undefined, serverTiming: string | string[] | undefined }
  [kStallTimer]: NodeJS.Timeout | undefined
}
