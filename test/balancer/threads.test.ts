// BALANCER_THREADS=2: two threads on one port (threads.ts), one rotation, one health, one view.
// Every request opens a connection of its own (agent: false), so the kernel spreads them over
// both threads; each test checks that both did serve, or it would prove nothing.
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import { pino } from 'pino'
import type { BalancerStats } from '../../balancer/balancer.ts'
import type { BalancerConfig } from '../../balancer/config.ts'
import { createThreadedBalancer } from '../../balancer/threads.ts'
import { startUpstream, testConfig, waitFor } from './fixtures/helpers.ts'
import type { Reply } from './fixtures/helpers.ts'

// Upper bounds for what arrives by message between threads, generous for a loaded machine.
const WAIT_MS = 15_000

async function startThreaded (t: Test, upstreams: string[], overrides: Partial<BalancerConfig> = {}): Promise<string> {
  const threaded = createThreadedBalancer(testConfig(upstreams, { threads: 2, ...overrides }), pino({ level: 'silent' }), { onFailure: (err) => { t.fail(`a balancer thread failed: ${err.message}`) } })
  const url = await threaded.listen()
  t.teardown(async () => { await threaded.close() })
  return url
}

/** One request on a connection of its own. */
function get (url: string, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    }).on('error', reject)
  })
}

async function stats (url: string): Promise<BalancerStats> {
  return JSON.parse((await get(`${url}/_balancer/stats`)).body) as BalancerStats
}

function countBy (replies: Reply[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const r of replies) {
    const by = String(r.headers['x-served-by'] ?? r.status)
    counts[by] = (counts[by] ?? 0) + 1
  }
  return counts
}

/** Each thread's proxied requests, from the stats' per-thread shares. */
function perThread (s: BalancerStats): number[] {
  return (s.threads ?? []).map((share) => share.upstreams.reduce((sum, u) => sum + u.requests, 0))
}

t.test('round robin stays exact over two threads: 300 requests at once, 100 per server', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2', 'app-3'].map(async (id) => await startUpstream(t, id)))
  const url = await startThreaded(t, ups.map((u) => u.url))
  const replies = await Promise.all(Array.from({ length: 300 }, async () => await get(`${url}/feeds`)))
  t.same(countBy(replies), { 'app-1': 100, 'app-2': 100, 'app-3': 100 })
  t.same(ups.map((u) => u.received), [100, 100, 100], 'and each server received 100')

  const s = await stats(url)
  t.same(s.upstreams.map((u) => u.requests), [100, 100, 100], '/_balancer/stats sums both threads')
  t.same(s.upstreams.map((u) => u.answers.accepted), [100, 100, 100], 'answers too')
  const shares = perThread(s)
  t.equal(shares.length, 2, 'with a share per thread')
  t.ok(shares.every((n) => n > 0), `both threads proxied (${shares.join(' and ')})`)
  t.equal(shares.reduce((a, b) => a + b, 0), 300, 'and the shares add up to the whole')

  // Two rotations of their own would also split 300 evenly whenever each thread's share is a
  // multiple of 3; the order cannot be right by luck: one after another, each on a new connection.
  const order: string[] = []
  for (let i = 0; i < 30; i++) order.push(String((await get(`${url}/feeds`)).headers['x-served-by']))
  t.same(order, Array.from({ length: 30 }, (_, i) => `app-${(i % 3) + 1}`), 'one rotation, in order, whichever thread takes each connection')
  const more = perThread(await stats(url)).map((n, i) => n - (shares[i] ?? 0))
  t.ok(more.every((n) => n > 0), `both threads took some of those 30 (${more.join(' and ')})`)
})

t.test('sticky over two threads: each client stays on its server whichever thread takes its connection', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2', 'app-3'].map(async (id) => await startUpstream(t, id)))
  const url = await startThreaded(t, ups.map((u) => u.url), { strategy: 'sticky' })
  const clients = await Promise.all(Array.from({ length: 30 }, async () => {
    const first = await get(`${url}/login`)
    const pin = (first.headers['set-cookie'] ?? []).find((c) => c.startsWith('lb='))?.split(';')[0] ?? ''
    return { pin, home: first.headers['x-served-by'] }
  }))
  t.ok(clients.every((c) => c.pin !== ''), 'every new client is pinned')
  t.same(countBy(clients.map((c) => ({ status: 200, headers: { 'x-served-by': String(c.home) }, body: '' }))), { 'app-1': 10, 'app-2': 10, 'app-3': 10 }, 'new clients rotate exactly')
  const moved = (await Promise.all(clients.map(async (c) => {
    const replies = await Promise.all(Array.from({ length: 10 }, async () => await get(`${url}/feeds`, { cookie: c.pin })))
    return replies.filter((r) => r.headers['x-served-by'] !== c.home).length
  }))).reduce((a, b) => a + b, 0)
  t.equal(moved, 0, '300 pinned requests, none left its server')
  const shares = perThread(await stats(url))
  t.ok(shares.every((n) => n > 0), `both threads proxied (${shares.join(' and ')})`)
})

t.test('a killed upstream is marked down for every thread, and back up for every thread', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2', 'app-3'].map(async (id) => await startUpstream(t, id)))
  const url = await startThreaded(t, ups.map((u) => u.url), { healthIntervalMs: 100 })
  const healthOf = async (): Promise<boolean[][]> => (await stats(url)).threads?.map((share) => share.upstreams.map((u) => u.healthy)) ?? []
  t.same(await healthOf(), [[true, true, true], [true, true, true]])

  await ups[1]!.stop()
  await waitFor('app-2 down in every thread', async () => (await healthOf()).every((h) => h[1] === false), WAIT_MS)
  t.same(await healthOf(), [[true, false, true], [true, false, true]], 'both threads took it out')
  const replies = await Promise.all(Array.from({ length: 300 }, async () => await get(`${url}/feeds`)))
  t.same(countBy(replies), { 'app-1': 150, 'app-3': 150 }, 'no request went to it, from either thread, and the rest stays exact')
  const shares = perThread(await stats(url))
  t.ok(shares.every((n) => n > 0), `both threads proxied (${shares.join(' and ')})`)

  await ups[1]!.restart()
  await waitFor('app-2 up in every thread', async () => (await healthOf()).every((h) => h[1] === true), WAIT_MS)
  const after = await Promise.all(Array.from({ length: 30 }, async () => await get(`${url}/feeds`)))
  t.same(countBy(after), { 'app-1': 10, 'app-2': 10, 'app-3': 10 }, 'back in the rotation everywhere')
})

t.test('the dashboard\'s stream is one view: requests from both threads, with the totals of both', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2'].map(async (id) => await startUpstream(t, id)))
  const url = await startThreaded(t, ups.map((u) => u.url))
  // The page itself may land on either thread: a follower relays it to the leader.
  const batches: Array<{ requests: Array<{ path: string }>, answers: Record<string, { accepted: number }> }> = []
  const req = http.get(`${url}/_balancer/events`, { agent: false })
  t.teardown(() => { req.destroy() })
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => { req.once('response', resolve).once('error', reject) })
  t.equal(res.statusCode, 200)
  let buffer = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    buffer += chunk
    let end
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      if (/^event: requests$/m.test(block)) batches.push(JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? '{}'))
    }
  })
  res.on('error', () => {})
  // Until every thread has heard that a page is open (a message each), requests are not reported.
  await waitFor('a first reported request', async () => {
    await get(`${url}/feeds`)
    return batches.length > 0
  }, WAIT_MS)
  // Requests a thread took before it heard of the page are counted but never listed, and the
  // ones above may still be on their way: the 100 to count have a path of their own.
  const onStream = (): number => batches.reduce((n, b) => n + b.requests.filter((r) => r.path === '/feeds/counted').length, 0)
  const accepted = (s: BalancerStats): number => s.upstreams.reduce((n, u) => n + u.answers.accepted, 0)
  const acceptedBefore = accepted(await stats(url))
  const sent = await Promise.all(Array.from({ length: 100 }, async () => await get(`${url}/feeds/counted`)))
  t.equal(sent.filter((r) => r.status === 200).length, 100)
  await waitFor('the 100 requests on the stream', () => onStream() >= 100, WAIT_MS)
  await sleep(300)
  t.equal(onStream(), 100, 'every one of them is on the stream, once')
  const s = await stats(url)
  const total = accepted(s)
  t.equal(total - acceptedBefore, 100, 'and in the stats')
  t.ok(perThread(s).every((n) => n > 0), 'from both threads')
  await waitFor('a batch whose totals count them all', () => {
    const last = batches.at(-1)
    return last !== undefined && Object.values(last.answers).reduce((n, a) => n + a.accepted, 0) === total
  }, WAIT_MS)
  t.pass('the totals a batch carries are both threads\'')
})

t.test('a port another balancer on threads holds is refused, not silently shared (SO_REUSEPORT)', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const url = await startThreaded(t, [up.url])
  const port = Number(new URL(url).port)
  const second = createThreadedBalancer(testConfig([up.url], { threads: 2, port }), pino({ level: 'silent' }), { onFailure: (err) => { t.fail(err.message) } })
  await t.rejects(second.listen(), { code: 'EADDRINUSE' })
  await second.close()
  t.equal((await get(`${url}/feeds`)).headers['x-served-by'], 'app-1', 'the first one serves on')
})
