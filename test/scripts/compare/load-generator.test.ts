import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import { startLoadGenerator } from '../../../scripts/compare/load-client.ts'

/** Listens with `server` on a free port and starts a load generator; both stop with the test. */
async function serveAndGenerate (t: Test, server: Server): Promise<{ url: string, generator: ReturnType<typeof startLoadGenerator> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const generator = startLoadGenerator()
  t.teardown(async () => await generator.close())
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, generator }
}

t.test('each connection sends its own credential, from a process that is not the server\'s', async (t) => {
  const tokensBySocket = new Map<Socket, Set<string>>()
  let served401 = 0
  const server = createServer((req, res) => {
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
    const seen = tokensBySocket.get(req.socket) ?? new Set<string>()
    seen.add(token)
    tokensBySocket.set(req.socket, seen)
    const refused = token === 'token-bad'
    if (refused) served401++
    res.writeHead(refused ? 401 : 200, { 'content-type': 'application/json', 'server-timing': 'auth;dur=0.250;desc="test"' })
    res.end('{}')
  })
  const { url, generator } = await serveAndGenerate(t, server)
  t.not(generator.pid, process.pid)

  const tokens = ['token-a', 'token-b', 'token-c', 'token-d', 'token-e', 'token-bad']
  const ticks: number[] = []
  const result = await generator.run({ url, path: '/feeds', tokens, connections: 6, durationSeconds: 1 }, (tick) => ticks.push(tick.second))

  const perSocket = [...tokensBySocket.values()]
  t.equal(perSocket.length, 6, 'six connections')
  t.ok(perSocket.every((set) => set.size === 1), 'each connection sent one credential, always the same')
  t.same(perSocket.map((set) => [...set][0]).sort(), [...tokens].sort(), 'and no two connections shared one')

  const counted = Object.values(result.statusCounts).reduce((n, c) => n + c, 0)
  t.ok(result.requests > 0)
  t.equal(counted, result.requests, 'every response counted by status')
  const client401 = result.statusCounts['401'] ?? 0
  t.ok(client401 > 0 && client401 <= served401 && served401 <= client401 + 1,
    `the client saw ${client401} 401s, the server sent ${served401}: at most the one in flight at the end differs`)
  t.equal(result.errors, 0)
  t.equal(result.serverTimingAuthMs?.count, result.requests, 'a Server-Timing value read from every response')
  t.equal(result.serverTimingAuthMs?.p50, 0.25)
  const l = result.latencyMs
  t.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, 'percentiles in order, below a millisecond allowed')
  t.ok(result.cpuSeconds > 0, 'the generator measures its own CPU')
  t.ok(ticks.includes(1), 'progress ticks every second')
})

t.test('groups: the connections of each label of tokens are counted apart, with their own Server-Timing', async (t) => {
  const server = createServer((req, res) => {
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
    const older = token.startsWith('old-')
    res.writeHead(token === 'old-refused' ? 401 : 200, { 'server-timing': `auth;dur=${older ? '0.040' : '0.010'}` })
    res.end('{}')
  })
  const { url, generator } = await serveAndGenerate(t, server)

  const tokens = ['old-1', 'new-1', 'old-refused', 'new-2', 'new-3']
  const groups = ['old', 'new', 'old', 'new', 'new']
  const result = await generator.run({ url, path: '/feeds', tokens, groups, connections: 5, durationSeconds: 1 })
  const old = result.byGroup?.old
  const next = result.byGroup?.new
  t.same(Object.keys(result.byGroup ?? {}).sort(), ['new', 'old'])
  t.same([old?.connections, next?.connections], [2, 3], 'connections per label')
  t.ok((old?.statusCounts['401'] ?? 0) > 0 && (old?.statusCounts['200'] ?? 0) > 0, 'the old label got both its 200s and its 401s')
  t.equal(next?.statusCounts['401'], undefined, 'the new label got no 401')
  const counted = [old, next].flatMap((g) => Object.values(g?.statusCounts ?? {})).reduce((n, c) => n + c, 0)
  t.equal(counted, result.requests, 'every response counted in one label')
  t.same([old?.serverTimingAuthMs?.p50, next?.serverTimingAuthMs?.p50], [0.04, 0.01], 'each label\'s own auth-step times')

  const plain = await generator.run({ url, path: '/feeds', tokens, connections: 5, durationSeconds: 0.5 })
  t.equal(plain.byGroup, null, 'no groups asked for, none counted')
})

t.test('the load window by window, and a stop that ends it early with what it measured', async (t) => {
  const server = createServer((_req, res) => { setTimeout(() => res.end('{}'), 5) })
  const { url, generator } = await serveAndGenerate(t, server)

  const ticks: Array<{ second: number, seconds: number }> = []
  const result = await generator.run({ url, path: '/', tokens: ['a'], connections: 4, durationSeconds: 2.5 }, (tick) => ticks.push(tick))
  // A timer on a busy machine fires late: each window carries the length it really had.
  const lengths = result.windows.map((w) => w.seconds.toFixed(2)).join(', ')
  t.ok(result.windows.slice(0, 2).every((w) => w.seconds >= 0.99 && w.seconds < 1.4), `two windows of a second (${lengths} s)`)
  t.ok(result.windows.length === 3 && (result.windows[2]?.seconds ?? 1) < 0.9, 'and what was left after them')
  t.ok(Math.abs(result.windows.reduce((n, w) => n + w.seconds, 0) - result.durationSeconds) < 0.15, 'the windows cover the load')
  t.equal(result.windows.reduce((n, w) => n + w.requests, 0), result.requests, 'every response in one window')
  t.same(ticks.map((x) => x.second), [1, 2, 3], 'a tick as each window closes')
  t.ok(result.durationSeconds > 2.3 && result.durationSeconds < 3, `the duration kept: ${result.durationSeconds.toFixed(2)} s`)
  t.equal(result.stoppedEarly, false)

  const stop = new AbortController()
  const stopped = await generator.run({ url, path: '/', tokens: ['a'], connections: 4, durationSeconds: 30 }, (tick) => { if (tick.second === 1) stop.abort() }, stop.signal)
  t.equal(stopped.stoppedEarly, true)
  t.ok(stopped.durationSeconds < 1.5, `a 30 s job stopped after its first window, within a tenth of a second or so (${stopped.durationSeconds.toFixed(2)} s)`)
  t.ok(stopped.requests > 0 && stopped.windows.length >= 1, 'and it still says what it measured')
})

t.test('a job the generator cannot run is an error, not a hang', async (t) => {
  const generator = startLoadGenerator()
  t.teardown(async () => await generator.close())
  await t.rejects(generator.run({ url: 'http://127.0.0.1:9', path: '/', tokens: [], connections: 1, durationSeconds: 1 }), /needs at least one token/)
})
