import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { clientAgent, request, startBalancer, startUpstream } from './fixtures/helpers.ts'
import type { Reply } from './fixtures/helpers.ts'

/** The lb cookie a reply sets, as `lb=<pin>`, or undefined. */
function pinOf (reply: Reply): string | undefined {
  const cookies = reply.headers['set-cookie'] ?? []
  return cookies.find((c) => c.startsWith('lb='))?.split(';')[0]
}

t.test('sticky: a new client is pinned by cookie, and stays on its server', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2', 'app-3'].map((id) => startUpstream(t, id)))
  const { url, balancer } = await startBalancer(t, ups.map((u) => u.url), { strategy: 'sticky' })
  const agent = clientAgent(t)
  t.equal(balancer.stats().strategy, 'sticky')

  const first = await request(`${url}/login`, { agent, method: 'POST', body: '{}' })
  const pin = pinOf(first)
  t.ok(pin, 'the first answer pins the client')
  t.match(first.headers['set-cookie']?.find((c) => c.startsWith('lb=')), /^lb=[\w-]+; Path=\/; SameSite=Lax$/)
  const home = first.headers['x-served-by']

  const served = new Set<unknown>()
  for (let i = 0; i < 9; i++) {
    const reply = await request(`${url}/feeds`, { agent, headers: { cookie: `auth=x; ${pin ?? ''}` } })
    served.add(reply.headers['x-served-by'])
    t.equal(pinOf(reply), undefined, 'a pinned client is not pinned again')
  }
  t.same([...served], [home], 'all nine went to the pinned server')

  // New clients without the cookie still rotate.
  const others = []
  for (let i = 0; i < 2; i++) others.push(await request(`${url}/login`, { agent, method: 'POST', body: '{}' }))
  t.same(new Set([home, ...others.map((r) => r.headers['x-served-by'])]).size, 3, 'three new clients, three servers')
  t.not(pinOf(others[0]!), pin)

  const unknown = await request(`${url}/feeds`, { agent, headers: { cookie: 'lb=nonsense' } })
  t.ok(pinOf(unknown), 'a pin that names no upstream is replaced')
})

t.test('sticky: when the pinned server is down the client is re-pinned elsewhere', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2'].map((id) => startUpstream(t, id)))
  const { url } = await startBalancer(t, ups.map((u) => u.url), { strategy: 'sticky' })
  const agent = clientAgent(t)
  const first = await request(`${url}/`, { agent })
  const pin = pinOf(first) ?? ''
  t.equal(first.headers['x-served-by'], 'app-1')

  await ups[0]!.stop()
  const moved = await request(`${url}/feeds`, { agent, headers: { cookie: pin } })
  t.equal(moved.status, 200, 'the GET is retried on the other server')
  t.equal(moved.headers['x-served-by'], 'app-2')
  const newPin = pinOf(moved)
  t.ok(newPin !== undefined && newPin !== pin, 'and the answer pins the client to it')

  await ups[0]!.restart()
  const stays = await request(`${url}/feeds`, { agent, headers: { cookie: newPin ?? '' } })
  t.equal(stays.headers['x-served-by'], 'app-2', 'the client stays where it was moved')
})

t.test('sticky: the pin cookie is added to the upstream\'s own cookies, not put in their place', async (t) => {
  const server = http.createServer((req, res) => {
    res.setHeader('set-cookie', ['auth=token; HttpOnly; Path=/', 'theme=dark'])
    res.setHeader('x-served-by', 'cookie-server')
    res.end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const { url } = await startBalancer(t, [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], { strategy: 'sticky' })
  const reply = await request(`${url}/login`, { agent: clientAgent(t) })
  const cookies = reply.headers['set-cookie'] ?? []
  t.equal(cookies.length, 3)
  t.ok(cookies.includes('auth=token; HttpOnly; Path=/'))
  t.ok(cookies.includes('theme=dark'))
  t.ok(pinOf(reply))
})

t.test('round robin sets no cookie', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url, balancer } = await startBalancer(t, [up.url])
  const reply = await request(`${url}/`, { agent: clientAgent(t) })
  t.equal(reply.headers['set-cookie'], undefined)
  t.equal(balancer.stats().strategy, 'round-robin')
})
