// What a follower thread (thread.ts) hands to the leader: the admin paths, and its requests for
// the dashboard while one is open. Never on the proxy's path otherwise.
import http from 'node:http'
import type { EventHub, RequestEvent } from './events.ts'
import { sendJson } from './replies.ts'

const LEADER_UNAVAILABLE = JSON.stringify({ error: 'balancer_leader_unavailable' })
// The leader's dashboard batches every 100 ms; a follower's batches go at the same pace. Past
// this many in one batch the rest are dropped: each batch carries the exact totals anyway.
const FLUSH_MS = 100
const MAX_PER_FLUSH = 2000

/**
 * An EventHub that forwards: `active` follows the leader's pages (setActive), and the requests go
 * to `post` in batches, each with this thread's totals, for the leader's hub to pass on.
 */
export function createRelayHub (post: (events: RequestEvent[]) => void): EventHub & { setActive (active: boolean): void } {
  let queue: RequestEvent[] = []
  let timer: NodeJS.Timeout | undefined
  function flush (): void {
    timer = undefined
    if (queue.length === 0) return
    const events = queue
    queue = []
    post(events)
  }
  const hub = {
    active: false,
    setActive (active: boolean): void {
      hub.active = active
      if (!active) {
        clearTimeout(timer)
        timer = undefined
        queue = []
      }
    },
    // Pages subscribe at the leader: a follower relays /_balancer/events there.
    subscribe (_req: http.IncomingMessage, res: http.ServerResponse): void {
      res.writeHead(404).end()
    },
    request (event: RequestEvent): void {
      if (!hub.active) return
      if (queue.length < MAX_PER_FLUSH) queue.push(event)
      timer ??= setTimeout(flush, FLUSH_MS)
    },
    publish (): void {},
    close (): void {
      clearTimeout(timer)
      flush()
    }
  }
  return hub
}

/**
 * Sends an admin request (`/_balancer/*`) to the leader's private listener and streams its answer
 * back, the dashboard's event stream included. The leader gone or not answering: a 503, named.
 */
export function createAdminRelay (adminUrl: string): { relay (req: http.IncomingMessage, res: http.ServerResponse): void, close (): void } {
  const agent = new http.Agent({ keepAlive: true })
  function relay (req: http.IncomingMessage, res: http.ServerResponse): void {
    const upstream = http.request(`${adminUrl}${req.url ?? '/'}`, { method: req.method, headers: req.headers, agent }, (answer) => {
      // The hop's own framing is not the client's: Node frames the answer on the client's connection itself.
      const headers = { ...answer.headers }
      delete headers.connection
      delete headers['keep-alive']
      delete headers['transfer-encoding']
      res.writeHead(answer.statusCode ?? 502, headers)
      answer.pipe(res)
    })
    upstream.on('error', () => {
      if (!res.headersSent) sendJson(req, res, 503, LEADER_UNAVAILABLE)
      else res.destroy()
    })
    // A page that closes its event stream: the leader's end of it closes too.
    res.on('close', () => { if (!res.writableFinished) upstream.destroy() })
    req.pipe(upstream)
  }
  return { relay, close: () => { agent.destroy() } }
}
