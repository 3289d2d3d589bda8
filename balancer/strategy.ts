// Choosing an upstream for a request, once per attempt: round robin over the healthy ones, or
// sticky, where a cookie pins each client to one while it is healthy. Both run on the hot path:
// no allocation, and the sticky pin to set is left on the response under a symbol.
import type http from 'node:http'
import type { Strategy } from './config.ts'
import type { Upstream } from './upstream.ts'

/** The cookie that pins a client to an upstream under the sticky strategy. */
export const STICKY_COOKIE = 'lb'
const PIN_PATTERN = /(?:^|;)\s*lb=([^;\s]*)/

/** Set by the sticky strategy when the answer must pin the client: the pin cookie's value. */
export const kPin = Symbol('balancer.pin')

/** The response a choice is made for; only the sticky strategy writes to it. */
export interface PinnedResponse {
  [kPin]?: string | undefined
}

export interface UpstreamChooser {
  /** The upstream for this request, or undefined when none is healthy. */
  choose (req: http.IncomingMessage, res: PinnedResponse): Upstream | undefined
  /** The upstream set changed: choose from `list` from now on, starting over. */
  use (list: readonly Upstream[]): void
}

/**
 * A round-robin position shared by every thread of the balancer (threads.ts): one Int32 slot of
 * a SharedArrayBuffer per pool, so that N threads together make one rotation, not N.
 */
export interface SharedCursor {
  cursors: Int32Array
  slot: number
}

export function createChooser (strategy: Strategy, list: readonly Upstream[], shared?: SharedCursor): UpstreamChooser {
  const rotation = shared === undefined ? new RoundRobin(list) : new SharedRoundRobin(list, shared)
  return strategy === 'sticky' ? new Sticky(list, rotation) : rotation
}

/** Each request to the next healthy upstream, in the set's order. */
class RoundRobin implements UpstreamChooser {
  list: readonly Upstream[]
  cursor: number

  constructor (list: readonly Upstream[]) {
    this.list = list
    this.cursor = 0
  }

  choose (): Upstream | undefined {
    const list = this.list
    const n = list.length
    for (let i = 0; i < n; i++) {
      const upstream = list[this.cursor % n] as Upstream
      this.cursor = (this.cursor + 1) % n
      if (upstream.healthy) return upstream
    }
    return undefined
  }

  use (list: readonly Upstream[]): void {
    this.list = list
    this.cursor = 0
  }
}

/**
 * Round robin with the position in shared memory: every request takes the next position with one
 * Atomics.add, whichever thread it is on, and goes to that position among the healthy upstreams
 * (position modulo how many are healthy). So 300 requests over 3 healthy upstreams are exactly
 * 100 each however the kernel spreads the connections over the threads, and with one down the
 * other two alternate. Skipping an unhealthy upstream's turn by taking another position, as the
 * one-thread RoundRobin does, could meet it again and again while other threads take the turns
 * in between. The position is a 32-bit counter: where it wraps, once every 2^32 requests, one
 * step of the rotation is out of order. Threads apply a change of health or of the set a few
 * microseconds apart; meanwhile they may disagree on the healthy ones.
 */
class SharedRoundRobin implements UpstreamChooser {
  list: readonly Upstream[]
  readonly cursors: Int32Array
  readonly slot: number

  constructor (list: readonly Upstream[], shared: SharedCursor) {
    this.list = list
    this.cursors = shared.cursors
    this.slot = shared.slot
  }

  choose (): Upstream | undefined {
    const list = this.list
    const n = list.length
    let healthy = 0
    for (let i = 0; i < n; i++) if ((list[i] as Upstream).healthy) healthy++
    if (healthy === 0) return undefined
    let k = (Atomics.add(this.cursors, this.slot, 1) >>> 0) % healthy
    if (healthy === n) return list[k]
    for (let i = 0; i < n; i++) {
      const upstream = list[i] as Upstream
      if (!upstream.healthy) continue
      if (k === 0) return upstream
      k--
    }
    return undefined
  }

  use (list: readonly Upstream[]): void {
    this.list = list
    Atomics.store(this.cursors, this.slot, 0)
  }
}

// Sticky: the upstream named by the client's pin cookie while it is healthy;
// otherwise the next in the rotation, and the answer pins the client to it.
// The pin is a hash of the upstream's URL, the same in every thread, so a client stays on its
// server whichever thread its connection lands on.
class Sticky implements UpstreamChooser {
  readonly rotation: UpstreamChooser
  byPin: Map<string, Upstream>

  constructor (list: readonly Upstream[], rotation: UpstreamChooser) {
    this.rotation = rotation
    this.byPin = new Map(list.map((u) => [u.pin, u]))
  }

  choose (req: http.IncomingMessage, res: PinnedResponse): Upstream | undefined {
    const pinned = this.byPin.get(readPin(req.headers.cookie))
    if (pinned !== undefined && pinned.healthy && !pinned.removed) {
      res[kPin] = undefined
      return pinned
    }
    const upstream = this.rotation.choose(req, res)
    res[kPin] = upstream?.pin
    return upstream
  }

  use (list: readonly Upstream[]): void {
    this.rotation.use(list)
    this.byPin = new Map(list.map((u) => [u.pin, u]))
  }
}

/** The value of the sticky cookie in a Cookie header, or '' (no upstream has that pin). */
function readPin (cookie: string | undefined): string {
  if (cookie === undefined) return ''
  return PIN_PATTERN.exec(cookie)?.[1] ?? ''
}

/** The Set-Cookie that pins a client to the upstream with this pin. */
export function pinCookie (pin: string): string {
  // Not HttpOnly: the pin is no secret, and the dashboard shows which server it names.
  return `${STICKY_COOKIE}=${pin}; Path=/; SameSite=Lax`
}
