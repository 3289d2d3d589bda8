import t from 'tap'
import { clientAgent, request, startBalancer, startUpstream } from './fixtures/helpers.ts'

t.test('round robin: 30 GETs give exactly 10 to each of 3 upstreams', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2', 'app-3'].map((id) => startUpstream(t, id)))
  const { url } = await startBalancer(t, ups.map((u) => u.url))
  const agent = clientAgent(t)

  const counts: Record<string, number> = {}
  const order: string[] = []
  for (let i = 0; i < 30; i++) {
    const reply = await request(`${url}/feeds?i=${i}`, { agent })
    t.equal(reply.status, 200)
    const servedBy = String(reply.headers['x-served-by'])
    order.push(servedBy)
    counts[servedBy] = (counts[servedBy] ?? 0) + 1
    t.equal(JSON.parse(reply.body).url, `/feeds?i=${i}`, 'path and query reach the upstream unchanged')
  }
  t.same(counts, { 'app-1': 10, 'app-2': 10, 'app-3': 10 })
  t.same(order.slice(0, 6), ['app-1', 'app-2', 'app-3', 'app-1', 'app-2', 'app-3'], 'strict rotation')
  t.same(ups.map((u) => u.received), [10, 10, 10])
})

t.test('x-forwarded-* headers reach the upstream', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [up.url])
  const agent = clientAgent(t)
  const port = new URL(url).port

  await request(`${url}/`, { agent })
  await request(`${url}/`, { agent, headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' } })
  const [plain, chained] = up.seen
  t.equal(plain?.['x-forwarded-for'], '127.0.0.1')
  t.equal(plain?.['x-forwarded-proto'], 'http')
  t.equal(plain?.['x-forwarded-port'], port)
  t.equal(plain?.['x-forwarded-host'], `127.0.0.1:${port}`)
  // The balancer is the edge: a client's own X-Forwarded-* is a claim, not evidence, and the
  // app servers believe these headers from the balancer (TRUST_PROXY). So they are replaced.
  t.equal(chained?.['x-forwarded-for'], '127.0.0.1', 'a client cannot choose the address the app servers see')
  t.equal(chained?.['x-forwarded-host'], `127.0.0.1:${port}`)
  t.equal(chained?.['x-forwarded-proto'], 'http')
  t.equal(chained?.['x-forwarded-port'], port)
})

t.test('POST bodies and upstream status codes pass through', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [up.url])
  const agent = clientAgent(t)
  const reply = await request(`${url}/login`, { agent, method: 'POST', body: '{"username":"alice"}', headers: { 'content-type': 'application/json' } })
  t.equal(reply.status, 200)
  t.same(JSON.parse(reply.body), { servedBy: 'app-1', method: 'POST', url: '/login', body: '{"username":"alice"}' })
})

t.test('/_balancer/stats, unknown /_balancer paths, methods', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2'].map((id) => startUpstream(t, id)))
  const { url } = await startBalancer(t, ups.map((u) => u.url))
  const agent = clientAgent(t)
  for (let i = 0; i < 3; i++) await request(`${url}/x`, { agent })

  const stats = await request(`${url}/_balancer/stats?pretty`, { agent })
  t.equal(stats.status, 200)
  t.match(stats.headers['content-type'], /^application\/json/)
  const upstreams = [
    { url: ups[0]?.url, healthy: true, requests: 2, failures: 0, answers: { accepted: 2, refused: 0, unavailable: 0, other: 0 } },
    { url: ups[1]?.url, healthy: true, requests: 1, failures: 0, answers: { accepted: 1, refused: 0, unavailable: 0, other: 0 } }
  ]
  t.same(JSON.parse(stats.body), {
    strategy: 'round-robin',
    upstreams,
    ownAnswers: { accepted: 0, refused: 0, unavailable: 0, other: 0 },
    pools: { default: { strategy: 'round-robin', upstreams } },
    routes: []
  })
  t.same(ups.map((u) => u.received), [2, 1], 'the stats request itself is not proxied')

  for (const path of ['/_balancer/x', '/_balancer', '/_balancer/stats/more']) {
    const reply = await request(`${url}${path}`, { agent })
    t.equal(reply.status, 404, path)
    t.same(JSON.parse(reply.body), { error: 'not_found' }, path)
  }
  const post = await request(`${url}/_balancer/stats`, { agent, method: 'POST', body: 'x' })
  t.equal(post.status, 405)
  t.equal(post.headers.allow, 'GET, HEAD')

  const other = await request(`${url}/_balancerx`, { agent })
  t.equal(other.headers['x-served-by'], 'app-2', 'only the /_balancer/ prefix is the balancer\'s')
  t.same(ups.map((u) => u.received), [2, 2])
})

t.test('setUpstreams keeps the state of upstreams that stay', async (t) => {
  const ups = await Promise.all(['app-1', 'app-2', 'app-3'].map((id) => startUpstream(t, id)))
  const [a, b, c] = ups.map((u) => u.url) as [string, string, string]
  const { url, balancer } = await startBalancer(t, [a, b])
  const agent = clientAgent(t)
  for (let i = 0; i < 4; i++) await request(`${url}/`, { agent })

  balancer.setUpstreams([b, `${c}/`])
  t.same(balancer.upstreams, [b, c])
  t.same(balancer.stats().upstreams.map((u) => [u.url, u.requests]), [[b, 2], [c, 0]])
  const served = []
  for (let i = 0; i < 4; i++) served.push((await request(`${url}/`, { agent })).headers['x-served-by'])
  t.same(served.sort(), ['app-2', 'app-2', 'app-3', 'app-3'])

  t.throws(() => { balancer.setUpstreams([a, 'not a url']) }, /not a URL/)
  t.same(balancer.upstreams, [b, c], 'a bad list changes nothing')

  balancer.setUpstreams([])
  const none = await request(`${url}/`, { agent })
  t.equal(none.status, 503)
  t.same(JSON.parse(none.body), { error: 'no_healthy_upstream' })
})
