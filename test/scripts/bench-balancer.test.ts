// npm run bench:balancer on a second of load per leg: the numbers' meaning,
// never their size (the machine is shared and small).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { BenchReport, LegReport } from '../../scripts/lib/bench-balancer.ts'
import { median, ratio } from '../../scripts/lib/bench-balancer.ts'
import { findCommand, haproxyConfig, nginxConfig, startReference } from '../../scripts/lib/bench-proxies.ts'

// Five processes to start (two app servers, our balancer, nginx, haproxy) and
// a load generator: on a busy machine starting Node alone can take 20 s.
t.setTimeout(300_000)

const BENCH = fileURLToPath(new URL('../../scripts/bench-balancer.ts', import.meta.url))
const installed = { nginx: findCommand('nginx') !== undefined, haproxy: findCommand('haproxy') !== undefined }
// Linux: where the bench reads each process's CPU time.
const PROC = existsSync('/proc/self/stat')
const measured = (value: number | null | undefined): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0

async function runBench (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  return { code, stdout, stderr }
}

async function portClosed (url: string): Promise<boolean> {
  const { port } = new URL(url)
  return await new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(true))
  })
}

t.test('a one-second run: every leg answers with no error, the ratios come from this run, the JSON has its fields', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-balancer-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'bench.json')
  const run = await runBench(['--duration', '1', '--rounds', '1', '--warmup', '0', '--connections', '10', '--servers', '2', '--json', file])
  t.equal(run.code, 0, `exits 0${run.code === 0 ? '' : `:\n${run.stderr}`}`)

  const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport
  t.match(report.config, { servers: 2, connections: 10, durationSeconds: 1, rounds: 1, path: '/health', upstreams: 2 })
  t.same(report.legs.map((l) => l.label), ['direct', 'ours', 'ours x2', 'node-http', 'undici', 'nginx', 'nginx x2', 'haproxy', 'haproxy x2'], 'one entry per leg, in order, skipped ones too; ours, nginx and haproxy once per --threads value (default 1,2)')
  t.same(report.config.threads, [1, 2])
  t.type(report.machine.cpus, 'number')

  const leg = (label: string): LegReport => report.legs.find((l) => l.label === label) as LegReport
  const ran = report.legs.filter((l) => l.skipped === undefined)
  for (const name of ['direct', 'ours', 'ours x2', 'node-http', 'undici', ...(['nginx', 'haproxy'] as const).filter((n) => installed[n]).flatMap((n) => [n, `${n} x2`])]) {
    const l = leg(name)
    t.ok(ran.includes(l), `${name} ran`)
    t.equal(l.rounds.length, 1, `${name}: one round`)
    t.ok(l.requests > 0, `${name} answered requests`)
    t.equal(l.errors, 0, `${name}: no socket errors or timeouts`)
    t.equal(l.non2xx, 0, `${name}: every answer a 2xx`)
    t.ok(l.median !== null && l.median.rps > 0 && l.median.latencyMs.p50 > 0, `${name}: a median rps and latency`)
    t.ok(l.median !== null && l.median.latencyMs.p50 <= l.median.latencyMs.p90 && l.median.latencyMs.p90 <= l.median.latencyMs.p99, `${name}: p50 <= p90 <= p99`)
    t.match(l.url, /^http:\/\/127\.0\.0\.1:\d+$/, `${name}: on 127.0.0.1`)
    t.ok(await portClosed(l.url as string), `${name}: nothing listens on its port after the run`)
    // CPU comes from /proc: where there is one, a leg that served requests used some, so a
    // zero, a NaN or a missing figure is a measurement that failed, not a fast proxy.
    const proxyCpu = [l.rounds[0]?.proxyCpuUsPerRequest, l.median?.proxyCpuUsPerRequest]
    const serversCpu = [l.rounds[0]?.serversCpuUsPerRequest, l.median?.serversCpuUsPerRequest]
    if (name === 'direct') t.same(proxyCpu, [null, null], 'direct: no proxy, no proxy CPU')
    else if (PROC) t.ok(proxyCpu.every(measured), `${name}: proxy CPU per request measured, round and median (${proxyCpu.join(', ')} µs)`)
    else t.same(proxyCpu, [null, null], `${name}: no /proc, no proxy CPU figure`)
    if (PROC) t.ok(serversCpu.every(measured), `${name}: the app servers' CPU per request measured (${serversCpu.join(', ')} µs)`)
  }
  for (const name of ['nginx', 'haproxy'] as const) {
    if (installed[name]) continue
    t.match(leg(name).skipped, /not installed/, `${name} is skipped with the reason`)
    t.match(run.stderr, `skipping the ${name} leg`, `the skip is printed for ${name}`)
    t.equal(report.ratios[name === 'nginx' ? 'oursToNginx' : 'oursToHaproxy'], null)
  }

  // The ratios are this run's medians divided, not numbers from elsewhere.
  const ours = leg('ours').median
  const direct = leg('direct').median
  t.ok(ours !== null && direct !== null)
  t.equal(report.ratios.oursToDirect?.rps, Math.round(ours!.rps / direct!.rps * 1000) / 1000, 'ours/direct rps')
  t.equal(report.ratios.oursToDirect?.p99, Math.round(ours!.latencyMs.p99 / direct!.latencyMs.p99 * 1000) / 1000, 'ours/direct p99')
  if (installed.nginx) {
    const nginx = leg('nginx').median!
    t.equal(report.ratios.oursToNginx?.rps, Math.round(ours!.rps / nginx.rps * 1000) / 1000, 'ours/nginx rps')
    t.equal(report.target.met, report.ratios.oursToNginx!.rps >= 0.8 && report.ratios.oursToNginx!.p99 <= 1.5, 'the target verdict follows the ratios')
  } else {
    t.equal(report.target.met, null, 'no nginx, no verdict')
  }

  t.match(run.stdout, /leg +req\/s +p50 ms +p90 ms +p99 ms +errors/, 'prints the table')
  t.match(run.stdout, /^ours +[\d,]+ /m)
  t.match(run.stdout, /ours \/ direct *: throughput \d+\.\d\d/, 'prints the ratios')
  t.match(run.stdout, /ours x2 \/ ours *: throughput \d+\.\d\d/, 'and what the second thread brings')
  const x2 = report.threaded.find((r) => r.threads === 2)
  t.equal(x2?.oursScaling?.rps, Math.round(leg('ours x2').median!.rps / ours!.rps * 1000) / 1000, 'ours x2 / ours from this run')
  if (installed.nginx) {
    t.equal(x2?.oursToNginx?.rps, Math.round(leg('ours x2').median!.rps / leg('nginx x2').median!.rps * 1000) / 1000, 'ours x2 / nginx x2 from this run')
    t.match(run.stdout, /ours x2 \/ nginx x2 *: throughput \d+\.\d\d/)
  }
  t.match(run.stdout, `wrote ${file}`)
})

t.test('--legs picks the legs; a bad flag is refused with the usage', async (t) => {
  const bad = await runBench(['--legs', 'direct,apache'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, '"apache" is not one of direct, ours, node-http, undici, nginx, haproxy')
  t.match(bad.stderr, 'Usage: npm run bench:balancer')
})

t.test('medians and ratios', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  const leg = (name: 'ours' | 'nginx', rps: number[], p99: number[]): LegReport => ({
    name,
    threads: 1,
    label: name,
    description: '',
    url: null,
    rounds: rps.map((r, i) => ({ round: i + 1, requests: r, durationSeconds: 1, rps: r, latencyMs: { p50: 1, p90: 2, p99: p99[i] as number, max: 9 }, ok: r, non2xx: 0, errors: 0, timeouts: 0, proxyCpuUsPerRequest: null, serversCpuUsPerRequest: null })),
    median: { rps: median(rps), latencyMs: { p50: 1, p90: 2, p99: median(p99) }, proxyCpuUsPerRequest: null, serversCpuUsPerRequest: null },
    requests: 0,
    errors: 0,
    timeouts: 0,
    non2xx: 0
  })
  const r = ratio(leg('ours', [800, 900, 700], [3, 2, 4]), leg('nginx', [1000, 1000, 1000], [2, 2, 2]))
  t.equal(r?.rps, 0.8, 'median over median')
  t.equal(r?.p99, 1.5)
  t.same(r?.rpsRange, [0.7, 0.9], 'round by round, paired')
  t.same(r?.p99Range, [1, 2])
  t.equal(ratio(leg('ours', [1], [1]), undefined), null, 'no other leg, no ratio')
})

t.test('the bare Node proxies are real proxies: round robin, bodies both ways, hop-by-hop headers dropped', async (t) => {
  const names = ['up-1', 'up-2']
  const servers = await Promise.all(names.map(async (name) => {
    const server = createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => { body += chunk })
      req.on('end', () => {
        res.setHeader('x-served-by', name)
        res.setHeader('keep-alive', 'timeout=72')
        res.end(JSON.stringify({ method: req.method, body, connection: req.headers.connection ?? null, forwardedFor: req.headers['x-forwarded-for'] ?? null }))
      })
    })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    t.teardown(() => { server.closeAllConnections(); server.close() })
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }))
  const dir = mkdtempSync(join(tmpdir(), 'bench-node-proxy-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  for (const name of ['node-http', 'undici'] as const) {
    const outcome = await startReference(name, dir, servers)
    if (!('proxy' in outcome)) throw new Error(`${name} did not start: ${outcome.skipped}`)
    t.teardown(async () => { await outcome.proxy.process.stop() })
    const served: string[] = []
    for (let i = 0; i < 4; i++) {
      const reply = await fetch(`${outcome.proxy.url}/x`, { method: 'POST', body: `hello ${i}`, headers: { connection: 'keep-alive' } })
      t.equal(reply.status, 200, `${name}: 200`)
      t.not(reply.headers.get('keep-alive'), 'timeout=72', `${name}: the upstream's Keep-Alive is not passed on`)
      const json = await reply.json() as { method: string, body: string, forwardedFor: string | null }
      t.same([json.method, json.body, json.forwardedFor], ['POST', `hello ${i}`, '127.0.0.1'], `${name}: method, body and X-Forwarded-For reach the upstream`)
      served.push(reply.headers.get('x-served-by') ?? '')
    }
    // Which one comes first depends on the readiness probe; after that they alternate.
    t.ok(served.every((s, i) => names.includes(s) && s !== served[i - 1]), `${name}: round robin (${served.join(', ')})`)
  }
})

t.test('the reference configs: round robin over every upstream, keep-alive to them, one worker', async (t) => {
  const ups = ['http://127.0.0.1:4001', 'http://127.0.0.1:4002']
  const nginx = nginxConfig('/tmp/x', 9000, ups)
  t.match(nginx, 'server 127.0.0.1:4001;')
  t.match(nginx, 'server 127.0.0.1:4002;')
  t.match(nginx, /keepalive \d+;/)
  t.match(nginx, 'proxy_http_version 1.1;')
  t.match(nginx, 'proxy_set_header Connection "";')
  t.match(nginx, 'worker_processes 1;')
  t.match(nginx, 'listen 127.0.0.1:9000;')
  const haproxy = haproxyConfig(9000, ups)
  t.match(haproxy, 'nbthread 1')
  t.match(haproxy, 'balance roundrobin')
  t.match(haproxy, 'server app-2 127.0.0.1:4002')
  t.match(haproxy, 'bind 127.0.0.1:9000')
  // Two workers: forked by nginx's master, each with its own listening socket, like our threads.
  const nginx2 = nginxConfig('/tmp/x', 9000, ups, 2)
  t.match(nginx2, 'worker_processes 2;')
  t.match(nginx2, 'master_process on;')
  t.match(nginx2, 'listen 127.0.0.1:9000 reuseport;')
  t.match(haproxyConfig(9000, ups, 2), 'nbthread 2')
})

t.test('a missing nginx or haproxy is a skipped leg with a reason, not a failure', async (t) => {
  const outcome = await startReference('nginx', tmpdir(), ['http://127.0.0.1:1'], undefined, () => undefined)
  t.same(outcome, { skipped: 'nginx is not installed (Debian/Ubuntu: apt-get install -y nginx haproxy)' })
})
