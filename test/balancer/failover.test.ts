import http from 'node:http'
import t from 'tap'
import { clientAgent, deadUrl, request, startBalancer, startUpstream, waitFor } from './fixtures/helpers.ts'

t.test('a killed upstream: GETs are retried on the next one, it is marked down at once', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2', 'app-3'].map((id) => startUpstream(t, id)))
  // Health checks effectively off: only the passive check can notice.
  const { url, balancer } = await startBalancer(t, ups.map((u) => u.url))
  const agent = clientAgent(t)
  for (let i = 0; i < 3; i++) t.equal((await request(`${url}/`, { agent })).status, 200)

  const killed = ups[1]!
  await killed.stop()
  const served: string[] = []
  for (let i = 0; i < 30; i++) {
    const reply = await request(`${url}/feeds`, { agent })
    t.equal(reply.status, 200, `GET ${i} succeeds`)
    served.push(String(reply.headers['x-served-by']))
  }
  t.notOk(served.includes('app-2'))
  t.equal(served.filter((s) => s === 'app-1').length, 15, 'the survivors share the load')

  const killedStats = balancer.stats().upstreams[1]!
  t.equal(killedStats.healthy, false)
  t.equal(killedStats.failures, 1, 'one failed attempt, then out of the rotation')
  t.equal(killedStats.requests, 2, 'one before the kill, one that failed over')
  t.same(balancer.stats().upstreams.map((u) => u.healthy), [true, false, true])

  // The retried request carries one hop in x-forwarded-for, not two.
  const retried = ups[2]!.seen.at(1)
  t.equal(retried?.['x-forwarded-for'], '127.0.0.1')
})

t.test('active health checks take a dead upstream out and bring it back', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2', 'app-3'].map((id) => startUpstream(t, id)))
  const { url, balancer } = await startBalancer(t, ups.map((u) => u.url), { healthIntervalMs: 50, healthTimeoutMs: 2000 })
  const agent = clientAgent(t)
  const target = ups[2]!

  await target.stop()
  await waitFor('the health check to mark app-3 down', () => balancer.stats().upstreams[2]?.healthy === false, 2000)
  t.ok(balancer.stats().upstreams[2]!.failures > 0)
  const requestsBefore = balancer.stats().upstreams[2]!.requests
  for (let i = 0; i < 10; i++) {
    const reply = await request(`${url}/`, { agent })
    t.equal(reply.status, 200)
    t.not(reply.headers['x-served-by'], 'app-3')
  }
  t.equal(balancer.stats().upstreams[2]!.requests, requestsBefore, 'no request was sent to the dead upstream')

  await target.restart()
  await waitFor('app-3 to rejoin', () => balancer.stats().upstreams[2]?.healthy === true, 2000)
  const served: string[] = []
  for (let i = 0; i < 9; i++) served.push(String((await request(`${url}/`, { agent })).headers['x-served-by']))
  t.same(served.filter((s) => s === 'app-3').length, 3, 'back in the rotation with its full share')
})

t.test('a health endpoint answering 5xx counts as down, 4xx as up', async (t) => {
  let status = 200
  const server = http.createServer((_req, res) => { res.statusCode = status; res.end() })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const upstreamUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const { balancer } = await startBalancer(t, [upstreamUrl])

  await balancer.checkHealth()
  t.equal(balancer.stats().upstreams[0]!.healthy, true)
  status = 503
  await balancer.checkHealth()
  t.equal(balancer.stats().upstreams[0]!.healthy, true, 'one 503 is a strike, not yet down (HEALTH_FALL 2)')
  await balancer.checkHealth()
  t.equal(balancer.stats().upstreams[0]!.healthy, false, 'the second 503 in a row takes it out')
  t.equal(balancer.stats().upstreams[0]!.failures, 2, 'both failed probes are counted')
  status = 404
  await balancer.checkHealth()
  t.equal(balancer.stats().upstreams[0]!.healthy, true, 'one good answer brings it back')
})

t.test('failed probes must come in a row: a good one in between starts the count again', async (t) => {
  const statuses = [503, 200, 503, 200, 503, 503]
  const server = http.createServer((_req, res) => { res.statusCode = statuses.shift() ?? 200; res.end() })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const { balancer } = await startBalancer(t, [`http://127.0.0.1:${(server.address() as { port: number }).port}`], { healthFall: 2 })
  const seen: boolean[] = []
  for (let i = 0; i < 6; i++) {
    await balancer.checkHealth()
    seen.push(balancer.stats().upstreams[0]!.healthy)
  }
  t.same(seen, [true, true, true, true, true, false], 'down only after 503, 503')
})

t.test('HEALTH_FALL 1 takes an upstream out on the first failed probe', async (t) => {
  const server = http.createServer((_req, res) => { res.statusCode = 500; res.end() })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const { balancer } = await startBalancer(t, [`http://127.0.0.1:${(server.address() as { port: number }).port}`], { healthFall: 1 })
  await balancer.checkHealth()
  t.equal(balancer.stats().upstreams[0]!.healthy, false)
})

t.test('a refused probe takes an upstream out at once: nothing listens there', async (t) => {
  const dead = await deadUrl()
  const { balancer } = await startBalancer(t, [dead], { healthFall: 5 })
  await balancer.checkHealth()
  t.same(balancer.stats().upstreams, [{ url: dead, healthy: false, requests: 0, failures: 1, answers: { accepted: 0, refused: 0, unavailable: 0, other: 0 } }])
})

t.test('a health check that hangs times out and counts as down', async (t) => {
  const server = http.createServer(() => { /* never answers */ })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const { balancer } = await startBalancer(t, [`http://127.0.0.1:${(server.address() as { port: number }).port}`], { healthTimeoutMs: 100 })
  const started = Date.now()
  await balancer.checkHealth()
  t.ok(Date.now() - started < 2000, 'the probe gave up after its timeout')
  t.equal(balancer.stats().upstreams[0]!.healthy, true, 'one slow probe is not enough')
  await balancer.checkHealth()
  t.equal(balancer.stats().upstreams[0]!.healthy, false, 'two timeouts in a row are')
})

t.test('POST to a dead upstream: 502 JSON, not retried', async (t) => {
  const dead = await deadUrl()
  const { url, balancer } = await startBalancer(t, [dead])
  const agent = clientAgent(t)

  const reply = await request(`${url}/login`, { agent, method: 'POST', body: '{"username":"alice","password":"wonderland"}', headers: { 'content-type': 'application/json' } })
  t.equal(reply.status, 502)
  t.match(reply.headers['content-type'], /^application\/json/)
  t.same(JSON.parse(reply.body), { error: 'bad_gateway', reason: 'ECONNREFUSED' }, 'the upstream\'s address is in the log, not in the answer')
  t.notMatch(reply.body, new URL(dead).port)
  t.same(balancer.stats().upstreams, [{ url: dead, healthy: false, requests: 1, failures: 1, answers: { accepted: 0, refused: 0, unavailable: 0, other: 1 } }])
})

t.test('POST is not retried even when another upstream is up', async (t) => {
  const live = await startUpstream(t, 'app-1')
  const dead = await deadUrl()
  const { url } = await startBalancer(t, [dead, live.url])
  const agent = clientAgent(t)
  const first = await request(`${url}/login`, { agent, method: 'POST', body: 'x' })
  t.equal(first.status, 502)
  t.equal(live.received, 0, 'the body was not replayed elsewhere')
  const second = await request(`${url}/login`, { agent, method: 'POST', body: 'x' })
  t.equal(second.status, 200, 'the dead one is out of the rotation now')
})

t.test('a GET with a chunked body is not retried either: its body was being sent', async (t) => {
  const live = await startUpstream(t, 'app-1')
  const dead = await deadUrl()
  const { url } = await startBalancer(t, [dead, live.url])
  const agent = clientAgent(t)
  const first = await request(`${url}/feeds`, { agent, method: 'GET', body: 'x', headers: { 'transfer-encoding': 'chunked' } })
  t.equal(first.status, 502, 'a body on the way is not replayed elsewhere')
  t.equal(live.received, 0)
})

t.test('all upstreams dead: 502 then 503, and the balancer keeps serving', async (t) => {
  const deads = [await deadUrl(), await deadUrl()]
  const { url, balancer } = await startBalancer(t, deads)
  const agent = clientAgent(t)

  const first = await request(`${url}/feeds`, { agent })
  t.equal(first.status, 502, 'tried every upstream, reports the last failure')
  t.same(JSON.parse(first.body), { error: 'bad_gateway', reason: 'ECONNREFUSED' })
  t.same(balancer.stats().upstreams.map((u) => [u.healthy, u.requests, u.failures]), [[false, 1, 1], [false, 1, 1]], 'each upstream tried exactly once')
  t.same(balancer.stats().upstreams.map((u) => u.answers.other), [0, 1], 'the 502 counts for the last upstream tried')

  for (let i = 0; i < 5; i++) {
    const reply = await request(`${url}/feeds`, { agent })
    t.equal(reply.status, 503)
    t.same(JSON.parse(reply.body), { error: 'no_healthy_upstream' })
  }
  const head = await request(`${url}/feeds`, { agent, method: 'HEAD' })
  t.equal(head.status, 503)
  t.equal(head.body, '')

  t.equal((await request(`${url}/_balancer/stats`, { agent })).status, 200, 'still answers its own routes')
  const live = await startUpstream(t, 'app-9')
  balancer.setUpstreams([...deads, live.url])
  const reply = await request(`${url}/feeds`, { agent })
  t.equal(reply.status, 200)
  t.equal(reply.headers['x-served-by'], 'app-9')
})

t.test('an upstream dying mid-response cuts the client off, nothing else', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [up.url])
  const agent = clientAgent(t)
  await t.rejects(request(`${url}/half`, { agent }), 'the client sees an incomplete response')
  const reply = await request(`${url}/after`, { agent })
  t.equal(reply.status, 200, 'the balancer is still up')
})
