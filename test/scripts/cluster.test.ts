import { connect, createServer, type Server } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type * as ClusterModule from '../../scripts/cluster.ts'
import * as ports from '../../scripts/lib/ports.ts'
import { httpOk } from '../../scripts/lib/probes.ts'
import { login } from '../helpers/cluster.ts'

// The race, made certain: a freePort() that hands out a port this test holds, as if another
// process had taken it between the launcher's choice and the child's bind. Before the fix an
// app server given that port exited with EADDRINUSE and the cluster never came up; now no
// child is handed a port at all (each binds 0 and reports its own), so freePort is never asked.

async function holdPort (t: Test): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  return (server.address() as { port: number }).port
}

/** cluster.ts with its ports module replaced; `freePort` answers `taken` for the first `times` calls. */
async function clusterWithRacingPorts (t: Test, taken: number, times: number, checkPort = ports.checkPort): Promise<{ cluster: typeof ClusterModule, calls: () => number }> {
  let calls = 0
  const cluster = await t.mockImport<typeof ClusterModule>('../../scripts/cluster.ts', {
    '../../scripts/lib/ports.ts': {
      ...ports,
      checkPort,
      freePort: async () => ++calls <= times ? taken : await ports.freePort()
    }
  })
  return { cluster, calls: () => calls }
}

t.test('a port taken between the launcher\'s choice and the bind: the cluster still comes up', { timeout: 180_000 }, async (t) => {
  const taken = await holdPort(t)
  const { cluster: { startCluster }, calls } = await clusterWithRacingPorts(t, taken, 1000)
  const cluster = await startCluster({ mode: 'jwt', servers: 3, logLevel: 'warn' })
  t.teardown(async () => await cluster.stop())

  const serverPorts = cluster.servers.map((s) => s.port)
  t.notOk(serverPorts.includes(taken), 'no app server was given the taken port')
  t.equal(new Set(serverPorts).size, 3, 'each server on a port of its own')
  for (const s of cluster.servers) t.equal(s.url, `http://127.0.0.1:${s.port}`, `${s.id}: its url is the port it reported`)
  t.equal(calls(), 0, 'nothing asked for a port: the servers and the balancer bind 0 and report theirs')
  const balancerPort = Number(new URL(cluster.url).port)
  t.not(balancerPort, taken, 'the balancer is not on the taken port')
  t.ok(await httpOk(`${cluster.url}/_balancer/stats`), 'the balancer answers on the port it reported')

  // Through the balancer, to every server.
  const { token } = await login(cluster.url)
  const servedBy = new Set<string | null>()
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${cluster.url}/feeds`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(res.status, 200)
    servedBy.add(res.headers.get('x-served-by'))
  }
  t.same([...servedBy].sort(), ['app-1', 'app-2', 'app-3'], 'the balancer reaches all three')

  // A restart asks for the same port again: the balancer's list of upstreams still holds.
  const balancerPid = cluster.balancer.pid
  await cluster.balancer.stop()
  await cluster.balancer.start()
  t.not(cluster.balancer.pid, balancerPid, 'the balancer restarted')
  t.ok(await httpOk(`${cluster.url}/_balancer/stats`), 'on the port it had')
  const [first] = cluster.servers
  if (first === undefined) throw new Error('no server')
  const { port, pid } = { port: first.port, pid: first.pid }
  await first.stop()
  await first.start()
  t.not(first.pid, pid, 'a new process')
  t.equal(first.port, port, 'on the port it had')
  t.ok(await httpOk(`http://127.0.0.1:${port}/health`), 'and answering there')
})

t.test('a port the user asked for, taken after the check: the clear LaunchError, never another port, nothing left running', { timeout: 180_000 }, async (t) => {
  const taken = await holdPort(t)
  // checkPort says free, as it would have a moment before another process took the port.
  const { cluster: { startCluster, LaunchError } } = await clusterWithRacingPorts(t, taken, 0, async () => ({ free: true }))
  const lines: string[] = []
  const attempt = startCluster({ mode: 'jwt', servers: 2, port: taken, logLevel: 'info', onLog: (source, line) => { lines.push(`${source} ${line}`) } })
  await t.rejects(attempt, LaunchError, 'a LaunchError: npm start exits 2 on it')
  await t.rejects(attempt, new RegExp(`^port ${taken} is taken: stop what uses it, or choose another with --port$`))
  const serverPorts = [...lines.join('\n').matchAll(/app-\d .*listening on http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]))
  t.equal(serverPorts.length, 2, 'both servers had started')
  for (const port of serverPorts) t.notOk(await httpOk(`http://127.0.0.1:${port}/health`, 1000), `and were stopped: nothing answers on ${port}`)
})

t.test('stop(): a server that closes on a signal of its own while the balancer drains is not an unexpected exit', { timeout: 180_000 }, async (t) => {
  const { startCluster } = await import('../../scripts/cluster.ts')
  const cluster = await startCluster({ mode: 'jwt', servers: 2, logLevel: 'warn' })
  t.teardown(async () => await cluster.stop())
  const unexpected: string[] = []
  for (const s of cluster.servers) s.onUnexpectedExit = (code, signal) => { unexpected.push(`${s.id} exited (${signal ?? String(code)})`) }

  // A login in flight at the balancer, its body half sent: stop() waits for the balancer to
  // drain it before it stops the servers, for as long as this test holds the body back.
  const socket = connect(Number(new URL(cluster.url).port), '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => { socket.destroy() })
  let answer = ''
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
  await new Promise((resolve) => socket.once('connect', resolve))
  const body = JSON.stringify({ username: 'alice', password: 'wonderland' })
  socket.write(`POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`)
  await sleep(300)

  const stopping = cluster.stop()
  // Meanwhile every server gets a signal of its own, as when a terminal or a service manager
  // signals every process: the one without the login exits at once, before stop() asks it to.
  for (const s of cluster.servers) process.kill(s.pid as number, 'SIGINT')
  await sleep(1000)
  t.equal(cluster.servers.filter((s) => s.running).length, 1, 'one server exited before its turn')
  const closed = new Promise((resolve) => socket.once('close', resolve))
  socket.write(body.slice(10))
  await Promise.race([closed, sleep(10_000)])
  await stopping
  t.match(answer, /^HTTP\/1\.1 200 /, 'the login in flight was answered')
  t.same(unexpected, [], 'no exit reported as unexpected')
})
