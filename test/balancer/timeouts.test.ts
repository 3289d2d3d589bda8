import http from 'node:http'
import t from 'tap'
import { clientAgent, request, socketCount, startBalancer, startUpstream, waitFor } from './fixtures/helpers.ts'

t.test('an upstream slower than the proxy timeout gives a 504 JSON', async (t) => {
  const up = await startUpstream(t, 'app-1', { slowMs: 3000 })
  const { url, balancer } = await startBalancer(t, [up.url], { proxyTimeoutMs: 150 })
  const agent = clientAgent(t)

  const started = Date.now()
  const reply = await request(`${url}/slow`, { agent })
  const elapsed = Date.now() - started
  t.equal(reply.status, 504)
  t.same(JSON.parse(reply.body), { error: 'gateway_timeout' }, 'no internal address in the answer')
  t.ok(elapsed >= 140 && elapsed < 2500, `answered after the proxy timeout, long before the upstream (${elapsed} ms)`)
  await waitFor('the upstream to see its request closed', () => up.pending === 0)
  t.equal(up.closedUnanswered, 1, 'the stuck upstream request was cut off')
  t.same(balancer.stats().upstreams, [{ url: up.url, healthy: true, requests: 1, failures: 1, answers: { accepted: 0, refused: 0, unavailable: 0, other: 1 } }], 'slow is not down; its 504 counts for it')

  const next = await request(`${url}/`, { agent })
  t.equal(next.status, 200)
})

// http-proxy #1586: http-proxy only aborts the upstream request on the
// client's 'aborted' event, which never fires once a bodyless request was
// read. Each hang-up would then keep an upstream request and its socket.
t.test('clients hanging up mid-request leak no upstream request or socket', async (t) => {
  const up = await startUpstream(t, 'app-1') // /slow never answers
  const { url, balancer } = await startBalancer(t, [up.url], { proxyTimeoutMs: 30_000 })
  const batches = 4
  const perBatch = 50

  for (let batch = 1; batch <= batches; batch++) {
    const clients = new http.Agent({ keepAlive: true, maxSockets: perBatch })
    const requests: http.ClientRequest[] = []
    t.teardown(() => { clients.destroy() })
    for (let i = 0; i < perBatch; i++) {
      const req = http.get(`${url}/slow`, { agent: clients })
      req.on('error', () => { /* we hang up ourselves */ })
      requests.push(req)
    }
    await waitFor(`batch ${batch} to reach the upstream`, () => up.pending === perBatch, 10_000)
    t.equal(socketCount(balancer.agent).active, perBatch, 'one upstream socket per request in flight')
    for (const req of requests) req.destroy()
    await waitFor(`batch ${batch}'s upstream requests to close`, () => up.pending === 0, 10_000)
    clients.destroy()
  }

  t.equal(up.received, batches * perBatch)
  t.equal(up.closedUnanswered, batches * perBatch, 'every upstream request was closed unanswered')
  await waitFor('the upstream connections to close', async () => (await up.connections()) === 0)
  t.same(socketCount(balancer.agent), { active: 0, free: 0 }, 'no socket left in the agent')
  t.same(balancer.stats().upstreams, [{ url: up.url, healthy: true, requests: batches * perBatch, failures: 0, answers: { accepted: 0, refused: 0, unavailable: 0, other: 0 } }],
    'a client hanging up is not an upstream failure')

  const agent = clientAgent(t)
  t.equal((await request(`${url}/`, { agent })).status, 200, 'still serving')
})

t.test('a client hanging up mid-body frees the upstream socket too', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url, balancer } = await startBalancer(t, [up.url])
  const clients = new http.Agent({ keepAlive: true })
  t.teardown(() => { clients.destroy() })

  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${url}/stall`, { agent: clients }, (res) => {
        res.once('data', () => { req.destroy(); resolve() })
      })
      req.on('error', (err) => { if (!req.destroyed) reject(err) })
    })
  }
  await waitFor('the upstream requests to close', () => up.pending === 0)
  t.equal(up.closedUnanswered, 20)
  await waitFor('the upstream connections to close', async () => (await up.connections()) === 0)
  t.same(socketCount(balancer.agent), { active: 0, free: 0 })
})

t.test('keep-alive: sequential requests reuse one upstream socket', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url, balancer } = await startBalancer(t, [up.url])
  const agent = clientAgent(t)
  for (let i = 0; i < 20; i++) t.equal((await request(`${url}/`, { agent })).status, 200)
  t.equal(await up.connections(), 1, 'the upstream saw one connection for 20 requests')
  t.same(socketCount(balancer.agent), { active: 0, free: 1 })
})

t.test('close() lets an in-flight request finish, then stops', async (t) => {
  const up = await startUpstream(t, 'app-1', { slowMs: 200 })
  const { url, balancer } = await startBalancer(t, [up.url])
  const agent = clientAgent(t)
  await request(`${url}/`, { agent }) // leaves an idle keep-alive connection behind

  const other = new http.Agent({ keepAlive: true })
  t.teardown(() => { other.destroy() })
  const inFlight = request(`${url}/slow`, { agent: other })
  await waitFor('the request to reach the upstream', () => up.pending === 1)
  const started = Date.now()
  await balancer.close()
  t.ok(Date.now() - started < 2000, 'close did not wait for idle keep-alive connections to time out')
  const reply = await inFlight
  t.equal(reply.status, 200, 'the in-flight request was answered')
  t.equal(balancer.server.listening, false)
  await waitFor('the agent to drop its sockets', () => socketCount(balancer.agent).free === 0)
  t.same(socketCount(balancer.agent), { active: 0, free: 0 })
  await t.rejects(request(`${url}/`, { agent }), 'no new connections')
})
