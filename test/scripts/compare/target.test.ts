import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createMetrics } from '../../../services/metrics.ts'
import { startCluster } from '../../../scripts/cluster.ts'
import { startLoadGenerator } from '../../../scripts/compare/load-client.ts'
import { loginSessions, measureRun } from '../../../scripts/compare/measure.ts'
import { connectToTarget, startLocalTarget } from '../../../scripts/compare/target.ts'
import { freePort } from '../../../scripts/lib/ports.ts'

t.test('--url: a running cluster is measured as it is, its mode from /health and its servers from /_balancer/stats', async (t) => {
  const cluster = await startCluster({ mode: 'memory', servers: 2, logLevel: 'warn' })
  t.teardown(async () => await cluster.stop())
  const target = await connectToTarget(`${cluster.url}/`)
  t.equal(target.mode, 'memory')
  t.equal(target.serverCount, 2)
  t.match(target.description, 'read from each server')
  t.same([...(await target.scrape()).keys()].sort(), ['app-1', 'app-2'])
  t.equal(target.balancerCpuSeconds(), undefined, 'someone else\'s balancer: its CPU is not visible')

  const generator = startLoadGenerator()
  t.teardown(async () => await generator.close())
  const tokens = await loginSessions(target.url, 7)
  const run = await measureRun(target, tokens, { connections: 7, durationSeconds: 1.5, warmupSeconds: 0 }, generator)
  t.ok(Math.abs(run.authFailureRate - 0.5) <= 0.15, `memory, 2 servers: ${(run.authFailureRate * 100).toFixed(1)}% of ${run.ok + run.unauthorized} refused`)
  t.same(Object.keys(run.perServer), ['app-1', 'app-2'])
  t.equal(run.bottleneck.balancerCores, null)
  t.match(run.bottleneck.warnings.join(), 'cannot be seen from here (--url)', 'it says it cannot tell whether the balancer limits throughput')

  await target.stop()
  t.ok(cluster.balancer.running && cluster.servers.every((s) => s.running), 'stopping a --url target leaves the cluster running')
})

t.test('servers out of reach (inside compose): /metrics is read through the balancer, one server per GET', async (t) => {
  const registries = [createMetrics('app-a', 'jwt'), createMetrics('app-b', 'jwt')]
  registries[1]!.authOutcomes.inc({ outcome: 'ok', reason: 'none' }, 7)
  let next = 0
  const unreachable = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`]
  const balancer = createServer((req, res) => {
    const send = (body: string): void => { res.writeHead(200).end(body) }
    if (req.url === '/health') send(JSON.stringify({ status: 'ok', mode: 'jwt' }))
    else if (req.url === '/_balancer/stats') send(JSON.stringify({ strategy: 'round-robin', upstreams: unreachable.map((url) => ({ url, healthy: true })) }))
    else if (req.url === '/metrics') { registries[next++ % 2]!.registry.metrics().then(send, () => res.writeHead(500).end()) } else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { balancer.close() })

  const target = await connectToTarget(`http://127.0.0.1:${(balancer.address() as { port: number }).port}`)
  t.equal(target.mode, 'jwt')
  t.equal(target.serverCount, 2)
  t.match(target.description, 'through the balancer')
  const counters = await target.scrape()
  t.same([...counters.keys()].sort(), ['app-a', 'app-b'])
  t.equal(counters.get('app-b')?.ok, 7, 'each server\'s own numbers, told apart by their server label')
})

t.test('--url: jwt whose servers have a store to ask is jwt-revocation', async (t) => {
  const health = { status: 'ok', mode: 'jwt', store: 'up' }
  const fake = createServer((req, res) => {
    if (req.url === '/health') res.writeHead(200).end(JSON.stringify(health))
    else if (req.url === '/metrics') { createMetrics('app-x', 'jwt').registry.metrics().then((m) => res.writeHead(200).end(m), () => res.writeHead(500).end()) } else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { fake.close() })
  const url = `http://127.0.0.1:${(fake.address() as { port: number }).port}`
  t.equal((await connectToTarget(url)).mode, 'jwt-revocation', 'store up')
  health.store = 'down'
  t.equal((await connectToTarget(url)).mode, 'jwt-revocation', 'store down: still the mode with a store')
  health.store = 'none'
  t.equal((await connectToTarget(url)).mode, 'jwt', 'no store: plain jwt')
})

t.test('a local jwt target holds two keys, and rotate() makes every server sign with the newer one', async (t) => {
  const target = await startLocalTarget({ mode: 'jwt', servers: 2 })
  t.teardown(async () => await target.stop())
  const keys = target.keys
  if (keys === undefined) throw new Error('expected two keys on a local jwt target')
  t.same(keys.kids, { newer: 'new', older: 'old' })
  const kid = (token: string): unknown => (JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: unknown }).kid
  const before = await loginSessions(target.url, 2)
  t.same(before.map(kid), ['old', 'old'], 'before the rotation both servers sign with the older key')
  const seconds = await keys.rotate()
  t.ok(seconds > 0 && seconds < 60, `every server restarted, back in ${seconds.toFixed(1)} s`)
  const after = await loginSessions(target.url, 2)
  t.same(after.map(kid), ['new', 'new'], 'after it both sign with the newer one')
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${target.url}/feeds`, { headers: { authorization: `Bearer ${before[0] ?? ''}` } })
    t.equal(res.status, 200, `a token from the older key is still accepted (${res.headers.get('x-served-by') ?? '?'})`)
  }
  t.equal((await startLocalTarget({ mode: 'memory', servers: 1 }).then(async (m) => { await m.stop(); return m.keys })), undefined, 'other modes have no keys to rotate')
})

t.test('a local postgres target reads its database\'s CPU (the postmaster and its backends) and has no Redis to read', async (t) => {
  const target = await startLocalTarget({ mode: 'postgres', servers: 1 })
  t.teardown(async () => await target.stop())
  t.equal(target.redisCpuSeconds?.(), undefined, 'postgres mode has no Redis')
  const [token] = await loginSessions(target.url, 1)
  const before = target.postgresCpuSeconds?.()
  t.type(before, 'number')
  // Each read is an UPDATE ... RETURNING on a backend: its CPU is the backend's, not the postmaster's.
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${target.url}/feeds`, { headers: { authorization: `Bearer ${token ?? ''}` } })
    await res.text()
    if (res.status !== 200) throw new Error(`read ${i}: ${res.status}`)
  }
  const after = target.postgresCpuSeconds?.() as number
  t.ok(after > (before as number), `600 statements: ${before} s, then ${after} s`)
})

t.test('--url with nothing there: a message that says so', async (t) => {
  await t.rejects(connectToTarget(`http://127.0.0.1:${await freePort()}`), /nothing answers GET .*\/health: is the cluster running\?/)
})

t.test('--url: a running cookie cluster (the Docker smoke test\'s last mode) is measured and reported, with no session-memory run', async (t) => {
  // It crashed in the report: the mode came from /health and was not one compare could price.
  const cluster = await startCluster({ mode: 'cookie', servers: 2, logLevel: 'warn' })
  t.teardown(async () => await cluster.stop())
  const compare = fileURLToPath(new URL('../../../scripts/compare.ts', import.meta.url))
  const child = spawn(process.execPath, [compare, '--url', cluster.url, '--duration', '1', '--warmup', '0', '--wear-in', '0', '--connections', '4', '--sessions', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { out += c.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) t.comment(out.slice(-2000))
  t.equal(code, 0, 'compare --url exits 0')
  t.match(out, /^cookie\s+[\d,]+/m, 'a cookie row in the table')
  t.notMatch(out, /TypeError|at file:/, 'no stack trace')
})
