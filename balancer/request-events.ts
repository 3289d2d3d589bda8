// A proxied request's line on the dashboard. Only while a page is open (events.active): then
// each request gets one 'finish' listener, shared, and one event object when it is answered.
// With no page open the proxy reads one boolean and calls none of this.
import { reasonOf } from './events.ts'
import type { EventHub } from './events.ts'
import { kAttempt, kSeen, kStarted } from './proxied-response.ts'
import type { ProxiedResponse } from './proxied-response.ts'

/** Returns `watch(res)`: report this request to the dashboard when it is answered. */
export function createRequestWatcher (events: EventHub): (res: ProxiedResponse) => void {
  // Runs only for requests that arrived while a dashboard was open.
  function onWatchedFinish (this: ProxiedResponse): void {
    const status = this.statusCode
    // An upstream's answer (kSeen, set by the proxy), or the balancer's own (its headers are in the map).
    const seen = this[kSeen]
    const servedBy = seen === undefined ? this.getHeader('x-served-by') : seen.servedBy
    const by = typeof servedBy === 'string' ? servedBy : null
    const authenticate = seen === undefined ? this.getHeader('www-authenticate') : seen.authenticate
    const url = this.req.url ?? '/'
    const query = url.indexOf('?')
    events.request({
      t: Date.now(),
      method: this.req.method ?? 'GET',
      path: (query === -1 ? url : url.slice(0, query)).slice(0, 200),
      status,
      servedBy: by,
      upstream: this[kAttempt]?.upstream.url ?? null,
      ms: Math.round((performance.now() - (this[kStarted] ?? 0)) * 100) / 100,
      reason: reasonOf(status, typeof authenticate === 'string' ? authenticate : undefined, by),
      authMs: authDurationOf(seen?.serverTiming)
    })
  }

  return function watch (res: ProxiedResponse): void {
    res[kStarted] = performance.now()
    res.once('finish', onWatchedFinish)
  }
}

const AUTH_DURATION = /(?:^|,)\s*auth;dur=([0-9.]+)/

/** The auth step's time from an upstream's Server-Timing (W3C Server Timing), read only while a page watches. */
function authDurationOf (serverTiming: string | string[] | undefined): number | null {
  const value = Array.isArray(serverTiming) ? serverTiming.join(',') : serverTiming
  const match = value === undefined ? null : AUTH_DURATION.exec(value)
  return match?.[1] === undefined ? null : Number(match[1])
}
