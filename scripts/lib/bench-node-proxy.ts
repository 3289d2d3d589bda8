// Two bare reverse proxies for `npm run bench:balancer`, so the run shows what
// any Node balancer costs before it does anything of its own. Each is round
// robin over keep-alive connections and nothing else: no health checks, no
// retries, no JSON errors, no X-Forwarded-* rules, no dashboard. Not for use;
// a floor to measure balancer/balancer.ts against.
//   node scripts/lib/bench-node-proxy.ts --client http|undici --port P --upstreams URL,URL
//   http:   node:http on both sides (the same machinery as balancer/balancer.ts)
//   undici: node:http to the client, undici's Pool to the upstreams (the client
//           behind Node's fetch, and @fastify/reply-from's default)
import http from 'node:http'
import { parseArgs } from 'node:util'
import { Pool, type Dispatcher } from 'undici'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

const { values } = parseArgs({
  options: {
    client: { type: 'string', default: 'http' },
    port: { type: 'string', default: '0' },
    upstreams: { type: 'string', default: '' }
  }
})
const upstreams = values.upstreams.split(',').filter((u) => u !== '').map((u) => new URL(u))
if (upstreams.length === 0 || (values.client !== 'http' && values.client !== 'undici')) {
  process.stderr.write('usage: bench-node-proxy.ts --client http|undici --port P --upstreams URL,URL\n')
  process.exit(2)
}

/** Raw headers ([name, value, ...]) less the hop-by-hop ones. */
function endToEnd (raw: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has((raw[i] as string).toLowerCase())) out.push(raw[i] as string, raw[i + 1] as string)
  }
  return out
}

/** The client's headers less the hop-by-hop ones, plus X-Forwarded-For. */
function requestHeaders (req: http.IncomingMessage): string[] {
  const out = endToEnd(req.rawHeaders)
  out.push('x-forwarded-for', req.socket.remoteAddress ?? '')
  return out
}

function fail (res: http.ServerResponse): void {
  if (res.headersSent) res.destroy()
  else res.writeHead(502).end()
}

let next = 0
let handler: http.RequestListener

if (values.client === 'http') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo', timeout: 4000 })
  handler = (req, res) => {
    const target = upstreams[next++ % upstreams.length] as URL
    const proxyReq = http.request({ agent, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: requestHeaders(req) }, (proxyRes) => {
      res.writeHead(proxyRes.statusCode ?? 502, endToEnd(proxyRes.rawHeaders))
      proxyRes.pipe(res)
    })
    proxyReq.on('error', () => { fail(res) })
    req.pipe(proxyReq)
  }
} else {
  const pools = upstreams.map((u) => new Pool(u.origin, { connections: 128, keepAliveTimeout: 4000 }))
  // undici's handler interface: the response arrives as callbacks, with no
  // IncomingMessage or stream in between.
  class Forward implements Dispatcher.DispatchHandler {
    private readonly res: http.ServerResponse
    constructor (res: http.ServerResponse) { this.res = res }
    onRequestStart (): void {}
    onResponseStart (controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[]>): void {
      const out: Record<string, string | string[]> = {}
      for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name] as string | string[]
      this.res.writeHead(status, out)
    }

    onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
      if (!this.res.write(chunk)) {
        controller.pause()
        this.res.once('drain', () => { controller.resume() })
      }
    }

    onResponseEnd (): void { this.res.end() }
    onResponseError (_controller: Dispatcher.DispatchController, _err: Error): void { fail(this.res) }
  }
  handler = (req, res) => {
    const pool = pools[next++ % pools.length] as Pool
    const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined
    pool.dispatch({ method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers: requestHeaders(req), body: bodyless ? null : req }, new Forward(res))
  }
}

const server = http.createServer({ keepAliveTimeout: 5000 }, handler)
server.listen(Number(values.port), '127.0.0.1')
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
