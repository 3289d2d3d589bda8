import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import { startLoadGenerator } from '../../../scripts/compare/load-client.ts'
import { startOpenLoadGenerator } from '../../../scripts/compare/open-load-client.ts'

// The server runs in this process and the generators each in their own: blocking this process's
// event loop stalls the server alone, as a garbage collection or a stuck lock would. It stalls
// after answering a given request, so the stall falls inside the load however long the
// generator's process took to start.
const STALL_MS = 200

function stall (): void {
  const until = performance.now() + STALL_MS
  while (performance.now() < until) { /* the stall: nothing answers */ }
}

async function listen (t: Test, server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

t.test('a stall of 200 ms shows in the open model\'s p99, and not in the closed loop\'s', async (t) => {
  const tokensBySocket = new Map<Socket, Set<string>>()
  let served = 0
  let stallAt = 300
  const server = createServer((req, res) => {
    if (++served === stallAt) setImmediate(stall)
    const seen = tokensBySocket.get(req.socket) ?? new Set<string>()
    seen.add(req.headers.authorization ?? '')
    tokensBySocket.set(req.socket, seen)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{}')
  })
  const url = await listen(t, server)
  const tokens = Array.from({ length: 8 }, (_, i) => `token-${i}`)

  const open = startOpenLoadGenerator()
  t.teardown(async () => await open.close())
  t.not(open.pid, process.pid, 'the generator is not in the server\'s process')
  // The 300th request of 800 is due 0.75 s in.
  const o = await open.run({ url, path: '/feeds', tokens, connections: 8, rate: 400, durationSeconds: 2 })

  t.equal(o.scheduled, 800, '400 req/s for 2 s')
  t.equal(o.completed, 800, 'every one answered')
  t.equal(served, 800)
  t.equal(o.errors + o.unsent, 0)
  // A machine so busy that the generator itself ran late keeps neither the rate nor a quiet median: it says so.
  if (o.generatorBehind) t.comment(`the generator ran behind its schedule (send lag p99 ${o.sendLagMs.p99.toFixed(1)} ms): rate ${o.achievedRps.toFixed(1)} req/s and median not checked`)
  else t.ok(Math.abs(o.achievedRps - 400) / 400 < 0.03, `the rate was kept (${o.achievedRps.toFixed(1)} req/s)`)
  const perSocket = [...tokensBySocket.values()]
  t.ok(perSocket.every((set) => set.size === 1), 'each connection sent one credential, always the same')
  t.equal(new Set(perSocket.map((set) => [...set][0])).size, perSocket.length, 'and no two connections shared one')
  t.ok(o.latencyMs.p99 >= 150, `open model: p99 ${o.latencyMs.p99.toFixed(1)} ms counts from when each request was due, so it shows the stall`)
  t.ok(o.latencyMs.max >= 180, `the worst waited the stall at least (${o.latencyMs.max.toFixed(1)} ms)`)
  if (!o.generatorBehind) {
    t.ok(o.latencyMs.max < 400, 'and not much more')
    t.ok(o.latencyMs.p50 < 50, `and the median did not (${o.latencyMs.p50.toFixed(2)} ms)`)
  }

  const closed = startLoadGenerator()
  t.teardown(async () => await closed.close())
  // Some thousands of requests in 2 s: stall after the first thousand, well inside the run.
  served = 0
  stallAt = 1000
  const c = await closed.run({ url, path: '/feeds', tokens, connections: 8, durationSeconds: 2 })
  t.ok(served > stallAt, `the closed loop reached the stall (${served} served)`)
  t.ok(c.latencyMs.max >= 150, `the closed loop's in-flight requests did wait (max ${c.latencyMs.max.toFixed(1)} ms)`)
  t.ok(c.latencyMs.p99 < 100, `closed loop (autocannon, 8 connections): p99 ${c.latencyMs.p99.toFixed(2)} ms over ${c.requests} requests: only the 8 in flight waited`)
  t.comment(`open model p50 ${o.latencyMs.p50.toFixed(2)} p99 ${o.latencyMs.p99.toFixed(1)} max ${o.latencyMs.max.toFixed(1)} ms (service time p99 ${o.serviceMs.p99.toFixed(1)} ms, send lag p99 ${o.sendLagMs.p99.toFixed(2)} ms); ` +
    `closed loop p50 ${c.latencyMs.p50.toFixed(2)} p99 ${c.latencyMs.p99.toFixed(2)} max ${c.latencyMs.max.toFixed(1)} ms, ${c.requests} requests`)
})

t.test('a server that cannot keep up: the rate is not reached, and the waiting requests count', async (t) => {
  // One connection, each answer 100 ms: at most 10 req/s, offered 100 for 1 s. The 2 s after the
  // schedule let about 20 more out; the rest never leave.
  const server = createServer((_req, res) => { setTimeout(() => { res.writeHead(200); res.end('{}') }, 100) })
  const url = await listen(t, server)
  const open = startOpenLoadGenerator()
  t.teardown(async () => await open.close())
  const o = await open.run({ url, path: '/feeds', tokens: ['only'], connections: 1, rate: 100, durationSeconds: 1 })
  t.ok(o.achievedRps <= 12, `achieved ${o.achievedRps.toFixed(1)} of 100 req/s`)
  t.ok(o.unsent >= 50, `${o.unsent} requests never found a free connection`)
  t.equal(o.completed + o.unsent + o.errors, o.scheduled, 'every due request is answered, failed, or counted as never sent')
  t.ok(o.latencyMs.p50 >= 1000, `their wait is in the latency (p50 ${o.latencyMs.p50.toFixed(0)} ms), while each answer took ~100 ms (service p50 ${o.serviceMs.p50.toFixed(1)} ms)`)
  t.ok(o.serviceMs.p50 < 500)
})

t.test('bad jobs are refused with a message', async (t) => {
  const open = startOpenLoadGenerator()
  t.teardown(async () => await open.close())
  await t.rejects(open.run({ url: 'http://127.0.0.1:9', path: '/', tokens: [], connections: 1, rate: 10, durationSeconds: 1 }), /at least one token/)
  await t.rejects(open.run({ url: 'http://127.0.0.1:9', path: '/', tokens: ['a'], connections: 1, rate: 0, durationSeconds: 1 }), /rate and a duration/)
})
