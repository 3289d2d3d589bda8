// Behind every balancer this project ships (ours, the nginx of docker/nginx/, the nginx and
// haproxy that bench:balancer compares with), a client must not choose the address its failed
// logins are counted under (LOGIN_MAX_FAILURES_PER_ADDRESS). The app servers believe
// X-Forwarded-For from loopback and private ranges (TRUST_PROXY) and read it from the right,
// skipping every address they trust (proxy-addr): a balancer that appends the client's address
// to the client's own X-Forwarded-For ($proxy_add_x_forwarded_for, haproxy's `option
// forwardfor`) hands them the client's claim whenever the client is on such a range itself, as
// a container on the Compose network is, or anyone behind Docker's userland proxy. Here the
// clients are on loopback: 127.0.0.x, one pair of addresses per balancer.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { findCommand, haproxyConfig, INSTALL_HINT, nginxConfig, nginxMainConfig, startNginx, startReference } from '../../scripts/lib/bench-proxies.ts'
import { ManagedProcess } from '../../scripts/lib/managed-process.ts'
import { freePort } from '../../scripts/lib/ports.ts'
import { httpOk } from '../../scripts/lib/probes.ts'
import { withCluster } from '../helpers/cluster.ts'

t.setTimeout(240_000)

const LIMIT = 3
const DOCKER_NGINX = fileURLToPath(new URL('../../docker/nginx/', import.meta.url))
const BALANCER_ENTRY = fileURLToPath(new URL('../../balancer/server.ts', import.meta.url))
const NGINX = findCommand('nginx')
const HAPROXY = findCommand('haproxy')

interface Leg {
  name: string
  /** Why this leg cannot run here, or false. */
  skip: string | false
  /** Starts this balancer in front of `upstreams`, stopped when `t` ends; resolves to its URL. */
  start: (t: Test, upstreams: string[]) => Promise<string>
}

const missing = (name: string, command: string | undefined): string | false => command === undefined ? `${name} is not installed here (${INSTALL_HINT})` : false

const LEGS: Leg[] = [
  { name: 'ours', skip: false, start: startOurs },
  { name: 'nginx, as bench:balancer configures it', skip: missing('nginx', NGINX), start: async (t, ups) => await startBenchReference(t, 'nginx', ups) },
  { name: 'haproxy, as bench:balancer configures it', skip: missing('haproxy', HAPROXY), start: async (t, ups) => await startBenchReference(t, 'haproxy', ups) },
  ...['compose.conf', 'host-network.conf'].map((file) => ({
    name: `nginx with docker/nginx/${file}`,
    skip: missing('nginx', NGINX),
    start: async (t: Test, ups: string[]) => await startDockerNginx(t, file, ups)
  }))
]

const cluster = await withCluster(t, {
  // Two servers sharing their counters in Redis: the limit holds across the round robin.
  mode: 'redis',
  servers: 2,
  serverEnv: { LOGIN_MAX_FAILURES_PER_ADDRESS: String(LIMIT), LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_THROTTLE_STORE: 'redis' }
})
const appServers = cluster.servers.map((s) => s.url)

t.test('no balancer config here appends to the X-Forwarded-For a client sent', async (t) => {
  // Directives only: the comments say why these are not used.
  const directives = (config: string): string => config.replace(/#.*$/gm, '')
  for (const file of readdirSync(DOCKER_NGINX).filter((f) => f.endsWith('.conf'))) {
    const text = directives(readFileSync(join(DOCKER_NGINX, file), 'utf8'))
    t.notMatch(text, '$proxy_add_x_forwarded_for', `docker/nginx/${file}`)
    t.match(text, /proxy_set_header X-Forwarded-For \$remote_addr;/, `docker/nginx/${file} sets it to the connection's address`)
  }
  const ups = ['http://127.0.0.1:4001']
  t.notMatch(directives(nginxConfig('/tmp/x', 9000, ups)), '$proxy_add_x_forwarded_for', 'bench:balancer\'s nginx')
  t.notMatch(directives(haproxyConfig(9000, ups)), /option\s+forwardfor/, 'bench:balancer\'s haproxy')
  t.match(directives(haproxyConfig(9000, ups)), 'http-request set-header X-Forwarded-For %[src]')
})

LEGS.forEach((leg, i) => {
  // Each leg's clients on addresses of their own, so the counters of one do not touch another's.
  const client = `127.0.0.${20 + 2 * i}`
  const neighbour = `127.0.0.${21 + 2 * i}`

  t.test(`${leg.name}: a forged X-Forwarded-For does not change the address a login is counted under`, { skip: leg.skip }, async (t) => {
    const url = await leg.start(t, appServers)
    // Three wrong logins at once, each for another user, each claiming another address.
    const first = await Promise.all([1, 2, 3].map(async (k) => await wrongLogin(url, client, `leg${i}-user${k}`, `198.51.100.${k}`)))
    t.same(first.map((a) => a.status), [401, 401, 401], `${LIMIT} wrong logins are answered 401`)
    const fourth = await wrongLogin(url, client, `leg${i}-user4`, '198.51.100.4')
    t.equal(fourth.status, 429, `the ${LIMIT + 1}th is refused: all were counted under ${client}, not under the addresses they named`)
    t.match(fourth.body, { error: 'too_many_attempts', message: /for this address/ })
    // Another client through the same balancer naming the first one's address: counted as itself,
    // so neither the balancer's own address nor the one it names holds the failures.
    const other = await wrongLogin(url, neighbour, `leg${i}-user5`, client)
    t.equal(other.status, 401, `a client on ${neighbour} is not refused for ${client}'s failures`)
  })

  t.test(`${leg.name}: Host as sent; X-Forwarded-For, -Host, -Port and -Proto what the balancer saw, whatever the client sent`, { skip: leg.skip }, async (t) => {
    const echo = await startHeaderEcho(t)
    const url = await leg.start(t, [echo])
    const port = new URL(url).port
    const seen = await send(url, client, 'GET', '/echo', {
      'x-forwarded-for': '198.51.100.9', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443'
    })
    t.equal(seen.status, 200)
    t.same(seen.body, {
      host: `127.0.0.1:${port}`,
      'x-forwarded-for': client,
      'x-forwarded-host': `127.0.0.1:${port}`,
      'x-forwarded-port': port,
      'x-forwarded-proto': 'http'
    })
    // The Host header is the client's to write: a port named there is not the one it connected to.
    const named = await send(url, client, 'GET', '/echo', { host: 'evil.example:9999' })
    t.equal(named.body['x-forwarded-port'], port, 'X-Forwarded-Port is the port of the connection, not of the Host header')
  })
})

t.test('an HTTP/1.0 request with no Host is answered through every balancer, as by the app servers', async (t) => {
  for (const leg of LEGS.filter((l) => l.skip === false)) {
    const url = await leg.start(t, appServers)
    t.match(await rawRequest(url, 'GET /health HTTP/1.0\r\n\r\n'), /^HTTP\/1\.[01] 200 /, leg.name)
  }
})

/** Sends `request` as it is on a new connection; resolves to everything that came back. */
async function rawRequest (url: string, request: string): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(request)
  await new Promise<void>((resolve) => { socket.once('close', () => { resolve() }); socket.setTimeout(10_000, () => { socket.destroy() }) })
  return received
}

async function wrongLogin (url: string, from: string, username: string, forwardedFor: string): Promise<{ status: number, body: Record<string, unknown> }> {
  return await send(url, from, 'POST', '/login', { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor }, JSON.stringify({ username, password: 'not-the-password' }))
}

/** One request from the local address `from`, as a client on that address would send it. */
async function send (url: string, from: string, method: string, path: string, headers: http.OutgoingHttpHeaders, body?: string): Promise<{ status: number, body: Record<string, unknown> }> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method, headers, localAddress: from, agent: false, timeout: 10_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> })
        } catch {
          reject(new Error(`${method} ${path} answered ${res.statusCode ?? 0} with a body that is not JSON: ${text.slice(0, 200)}`))
        }
      })
    })
    req.on('timeout', () => { req.destroy(new Error(`${method} ${path} timed out`)) })
    req.on('error', reject)
    req.end(body)
  })
}

/** An upstream that answers every request with the Host and X-Forwarded-* headers it got. */
async function startHeaderEcho (t: Test): Promise<string> {
  const server = http.createServer((req, res) => {
    const names = ['host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto']
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(Object.fromEntries(names.flatMap((n) => req.headers[n] === undefined ? [] : [[n, req.headers[n]]]))))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Our balancer as its own process (balancer/server.ts), as the launcher and Compose run it. */
async function startOurs (t: Test, upstreams: string[]): Promise<string> {
  const proc: ManagedProcess = new ManagedProcess({
    name: 'balancer',
    command: process.execPath,
    args: [BALANCER_ENTRY],
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', UPSTREAMS: upstreams.join(','), LOG_LEVEL: 'warn' },
    portVariable: 'PORT',
    isReady: async () => await httpOk(`http://127.0.0.1:${String(proc.reportedPort)}/_balancer/stats`)
  }, () => {})
  t.teardown(async () => { await proc.stop() })
  await proc.start()
  return `http://127.0.0.1:${String(proc.reportedPort)}`
}

async function startBenchReference (t: Test, name: 'nginx' | 'haproxy', upstreams: string[]): Promise<string> {
  const dir = tempDir(t)
  const outcome = await startReference(name, dir, upstreams)
  if (!('proxy' in outcome)) throw new Error(outcome.skipped)
  t.teardown(async () => { await outcome.proxy.process.stop() })
  return outcome.proxy.url
}

/** nginx with one of docker/nginx/'s files, as shipped but for where it listens and what it proxies to. */
async function startDockerNginx (t: Test, file: string, upstreams: string[]): Promise<string> {
  const dir = tempDir(t)
  const port = await freePort()
  const http = runnableHere(readFileSync(join(DOCKER_NGINX, file), 'utf8'), port, upstreams)
  const proc = await startNginx(NGINX as string, dir, nginxMainConfig(dir, http), port)
  t.teardown(async () => { await proc.stop() })
  return `http://127.0.0.1:${port}`
}

/**
 * A docker/nginx config made to run on this machine: `listen` on 127.0.0.1:port, the upstream's
 * servers replaced by `upstreams`, no Docker DNS resolver (127.0.0.11). Everything else, the
 * location and its headers above all, stays as shipped.
 */
function runnableHere (conf: string, port: number, upstreams: string[]): string {
  let listens = 0
  let servers = 0
  const lines = conf.split('\n').flatMap((line) => {
    if (/^\s*resolver\s/.test(line)) return []
    if (/^\s*listen\s/.test(line)) {
      listens++
      return [`    listen 127.0.0.1:${port};`]
    }
    // `server host:port ...;` in the upstream block (a `server {` block opens with a brace).
    if (/^\s*server\s+[^{;]+;/.test(line)) return servers++ > 0 ? [] : upstreams.map((u) => `    server ${new URL(u).host};`)
    return [line]
  })
  if (listens !== 1 || servers === 0) throw new Error(`expected one listen and an upstream in the config, found ${listens} and ${servers} servers`)
  return lines.join('\n')
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'forwarded-for-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}
