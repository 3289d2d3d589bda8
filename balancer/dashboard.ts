import { readFileSync, readdirSync } from 'node:fs'
import type http from 'node:http'
import { extname } from 'node:path'
import type { Logger } from 'pino'
import type { ClusterControl, ControlAction } from './control.ts'
import type { EventHub } from './events.ts'

/**
 * The live dashboard under /_balancer/: a page, its stylesheet and its ES modules (no build
 * step, no CDN), the event stream, and the stop/start relay to the launcher.
 *
 *   GET  /_balancer/            the page (also /_balancer/dashboard)
 *   GET  /_balancer/events      Server-Sent Events: hello, requests, upstream, cluster
 *   POST /_balancer/control     {"action":"stop"|"start","target":"app-2"|"redis"|"postgres"}
 */
export interface Dashboard {
  /** Answers the request if the path is the dashboard's; false otherwise. */
  handle (req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean
}

export interface DashboardOptions {
  hub: EventHub
  control: ClusterControl | undefined
  /** What a page starts from: the balancer's view of its upstreams. */
  snapshot: () => unknown
  logger: Logger
}

interface StaticFile { body: Buffer, type: string }

// The page and its modules, read once at start: every file in dashboard/ of a type below is
// served under /_balancer/<name>, and nothing else (no path is ever joined to a request's).
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8'
}
const PAGE = 'index.html'

// Everything comes from this origin: the page works offline, and nothing else can be loaded into it.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
const MAX_CONTROL_BODY = 1024
const NO_CONTROL = 'Stop and start need the local launcher: run the cluster with `npm start`. This balancer was started on its own (e.g. by docker compose), so it cannot reach the other processes.'

export function createDashboard (options: DashboardOptions): Dashboard {
  const { hub, control, snapshot, logger } = options
  const files = new Map<string, StaticFile>()
  const dir = new URL('./dashboard/', import.meta.url)
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)]
    if (type === undefined) continue
    const file = { body: readFileSync(new URL(name, dir)), type }
    files.set(`/_balancer/${name}`, file)
    if (name === PAGE) {
      files.set('/_balancer/', file)
      files.set('/_balancer/dashboard', file)
    }
  }

  function handle (req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean {
    const file = files.get(path)
    if (file !== undefined) {
      if (!allowMethods(req, res, 'GET, HEAD')) return true
      res.writeHead(200, {
        'content-type': file.type,
        'content-length': file.body.length,
        'cache-control': 'no-cache',
        'content-security-policy': CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer'
      })
      res.end(req.method === 'HEAD' ? undefined : file.body)
      return true
    }
    if (path === '/_balancer/events') {
      if (!allowMethods(req, res, 'GET')) return true
      hub.subscribe(req, res, { ...snapshot() as object, control: control === undefined ? { enabled: false, reason: NO_CONTROL } : { enabled: true } })
      if (control !== undefined) {
        control.info().then(
          (info) => { hub.publish('cluster', info) },
          (err: unknown) => { logger.warn({ err: (err as Error).message }, 'could not ask the launcher about the cluster') }
        )
      }
      return true
    }
    if (path === '/_balancer/control') {
      if (!allowMethods(req, res, 'POST')) return true
      handleControl(req, res)
      return true
    }
    return false
  }

  function handleControl (req: http.IncomingMessage, res: http.ServerResponse): void {
    // A cross-site form can send neither this content type nor this origin
    // without a CORS preflight, which this server never grants: another web
    // page open in the same browser cannot stop the cluster.
    const origin = req.headers.origin
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) {
      reply(req, res, 403, { error: 'forbidden', message: 'control requests must come from the dashboard itself' })
      return
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      reply(req, res, 415, { error: 'unsupported_media_type', message: 'send {"action","target"} as application/json' })
      return
    }
    if (control === undefined) {
      reply(req, res, 501, { error: 'control_unavailable', message: NO_CONTROL })
      return
    }
    let body = ''
    let tooLarge = false
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      body += chunk
      if (body.length > MAX_CONTROL_BODY) tooLarge = true
    })
    req.on('error', () => { res.destroy() })
    req.on('end', () => {
      if (tooLarge) {
        reply(req, res, 413, { error: 'payload_too_large' })
        return
      }
      let parsed: { action?: unknown, target?: unknown }
      try {
        parsed = JSON.parse(body) as typeof parsed
      } catch {
        parsed = {}
      }
      const { action, target } = parsed ?? {}
      if ((action !== 'stop' && action !== 'start') || typeof target !== 'string' || !/^[\w.-]{1,64}$/.test(target)) {
        reply(req, res, 400, { error: 'bad_request', message: 'expected {"action":"stop"|"start","target":"<server id, redis or postgres>"}' })
        return
      }
      logger.info({ action, target }, 'dashboard control')
      control.act(action as ControlAction, target).then(
        (info) => {
          hub.publish('cluster', info)
          reply(req, res, 200, { ok: true, action, target, cluster: info })
        },
        (err: unknown) => {
          reply(req, res, 409, { error: 'control_failed', message: (err as Error).message })
        }
      )
    })
  }

  return { handle }
}

function allowMethods (req: http.IncomingMessage, res: http.ServerResponse, allow: string): boolean {
  if (allow.split(', ').includes(req.method ?? '')) return true
  res.setHeader('allow', allow)
  reply(req, res, 405, { error: 'method_not_allowed' })
  return false
}

function reply (req: http.IncomingMessage, res: http.ServerResponse, status: number, data: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (!req.complete) req.resume()
  const body = JSON.stringify(data)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
