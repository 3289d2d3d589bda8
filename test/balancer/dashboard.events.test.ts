import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { createBalancer } from '../../balancer/balancer.ts'
import type { ClusterControl, ClusterInfo, ControlRequest } from '../../balancer/control.ts'
import { createIpcControl } from '../../balancer/control.ts'
import { reasonOf } from '../../balancer/events.ts'
import { clientAgent, deadUrl, request, startBalancer, startUpstream, testConfig, waitFor } from './fixtures/helpers.ts'

interface Frame { event: string, data: unknown }

/** A Server-Sent Events client good enough for tests: collects frames until closed. */
async function subscribe (t: Test, url: string): Promise<{ frames: Frame[], close: () => void, next: (event: string, after?: number) => Promise<Frame> }> {
  const frames: Frame[] = []
  const req = http.get(`${url}/_balancer/events`, { agent: false })
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
  })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  let buffer = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    buffer += chunk
    let end
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const event = /^event: (.*)$/m.exec(block)?.[1]
      const data = /^data: (.*)$/m.exec(block)?.[1]
      if (event !== undefined && data !== undefined) frames.push({ event, data: JSON.parse(data) })
    }
  })
  res.on('error', () => {})
  const close = (): void => { req.destroy() }
  t.teardown(close)
  const next = async (event: string, after = 0): Promise<Frame> => {
    await waitFor(`a ${event} event`, () => frames.slice(after).some((f) => f.event === event))
    return frames.slice(after).find((f) => f.event === event) as Frame
  }
  return { frames, close, next }
}

t.test('the event stream: hello, then each request with its server, status and reason', async (t) => {
  const up = await startUpstream(t, 'app-1')
  // An upstream that refuses the way the app servers do, with the reason in WWW-Authenticate.
  const refusing = http.createServer((req, res) => {
    res.writeHead(401, { 'x-served-by': 'app-2', 'www-authenticate': 'Bearer realm="auth-cluster", error="invalid_token", error_description="unknown_session"' })
    res.end('{}')
  })
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { refusing.closeAllConnections(); refusing.close() })
  const refusingUrl = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`
  const { url, balancer } = await startBalancer(t, [up.url, refusingUrl])
  const agent = clientAgent(t)

  t.equal(balancer.events.active, false, 'no page open: the proxy does nothing for events')
  await request(`${url}/before`, { agent })
  const stream = await subscribe(t, url)
  const hello = await stream.next('hello')
  t.match(hello.data, { strategy: 'round-robin', stickyCookie: 'lb', control: { enabled: false } })
  t.same((hello.data as { upstreams: Array<{ url: string }> }).upstreams.map((u) => u.url), [up.url, refusingUrl])
  t.equal(balancer.events.active, true)

  await request(`${url}/feeds?token=secret`, { agent })
  await request(`${url}/feeds?token=secret`, { agent })
  const batch = await stream.next('requests')
  const requests = (batch.data as { requests: Array<Record<string, unknown>> }).requests
  t.equal(requests.length, 2, 'the request made before the page opened is not in the stream')
  const accepted = requests.find((r) => r.servedBy === 'app-1')
  t.match(accepted, { method: 'GET', path: '/feeds', status: 200, upstream: up.url, reason: null })
  t.match(requests.find((r) => r.servedBy === 'app-2'), { status: 401, upstream: refusingUrl, reason: 'unknown_session' })
  t.notMatch(JSON.stringify(requests), /secret/, 'the query string is left out')
  t.type(accepted?.ms, 'number')

  stream.close()
  await waitFor('the stream to end', () => !balancer.events.active)
  t.pass('closing the page turns the events off again')
})

t.test('the event stream: upstream health changes, and 503 from the balancer itself', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url, balancer } = await startBalancer(t, [up.url])
  const stream = await subscribe(t, url)
  await stream.next('hello')
  await up.stop()
  await balancer.checkHealth()
  const down = await stream.next('upstream')
  t.match(down.data, { url: up.url, healthy: false })
  const after = stream.frames.length
  await request(`${url}/feeds`, { agent: clientAgent(t) })
  const batch = await stream.next('requests', after)
  t.match((batch.data as { requests: unknown[] }).requests[0], { status: 503, servedBy: null, reason: 'no_healthy_upstream' })
  await balancer.checkHealth()
  await up.restart()
  await balancer.checkHealth()
  t.match((await stream.next('upstream', after)).data, { url: up.url })
  const health = stream.frames.filter((f) => f.event === 'upstream').map((f) => f.data as { healthy: boolean, servedBy: string | null })
  t.ok(health.some((h) => h.healthy && h.servedBy === 'app-1'), 'the health answer names the server')
})

t.test('a closing balancer ends open event streams instead of waiting for them', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url, balancer } = await startBalancer(t, [up.url])
  await (await subscribe(t, url)).next('hello')
  const started = Date.now()
  await balancer.close()
  t.ok(Date.now() - started < 2000, 'closed promptly')
})

t.test('under load, requests beyond a batch are counted, not sent one by one', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [up.url])
  const stream = await subscribe(t, url)
  await stream.next('hello')
  const agent = clientAgent(t)
  await Promise.all(Array.from({ length: 260 }, async () => await request(`${url}/x`, { agent })))
  await waitFor('every request to be reported', () => {
    let seen = 0
    for (const f of stream.frames) {
      if (f.event !== 'requests') continue
      const data = f.data as { requests: unknown[], omitted?: Record<string, { accepted: number }> }
      seen += data.requests.length + Object.values(data.omitted ?? {}).reduce((n, x) => n + x.accepted, 0)
    }
    return seen === 260
  })
  const largest = Math.max(...stream.frames.filter((f) => f.event === 'requests').map((f) => (f.data as { requests: unknown[] }).requests.length))
  t.ok(largest <= 200, `at most 200 requests one by one per batch (largest: ${largest})`)
})

/** An upstream that answers `/status/NNN` with that status, the way an app server signs its answers. */
async function startStatusUpstream (t: Test, id: string): Promise<string> {
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ status: 'ok', servedBy: id }))
      return
    }
    const status = Number(/^\/status\/(\d{3})$/.exec(req.url ?? '')?.[1] ?? 200)
    req.resume()
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-served-by': id, ...(status === 302 ? { location: '/' } : {}) })
      res.end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

interface Answers { accepted: number, refused: number, unavailable: number, other: number }
interface StatsBody { strategy: string, upstreams: Array<{ url: string, healthy: boolean, requests: number, failures: number, answers: Answers }>, ownAnswers: Answers }

t.test('answers by class per upstream, counted from the balancer\'s start: in /_balancer/stats, the hello snapshot and each batch', async (t) => {
  const upstream = await startStatusUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [upstream], { maxBodyBytes: 16 * 1024 })
  const agent = clientAgent(t)
  const send = async (path: string, times: number, method = 'GET'): Promise<void> => {
    // At once, not one after another: the counters must not lose an increment under concurrency.
    const replies = await Promise.all(Array.from({ length: times }, async () => await request(`${url}${path}`, { agent, method })))
    for (const reply of replies) t.equal(reply.status, Number(path.slice(-3)), `${method} ${path}`)
  }
  // Before any page is open, as curl would: nothing of it reaches an event stream.
  await send('/status/200', 40)
  await send('/status/204', 2, 'POST')
  await send('/status/401', 25)
  await send('/status/403', 3)
  await send('/status/503', 4)
  await send('/status/404', 2)
  await send('/status/302', 1)
  await send('/status/500', 1)
  // The balancer's own answer, with no upstream to count it for: a body over MAX_BODY_BYTES.
  const tooLarge = await request(`${url}/status/200`, { agent, method: 'POST', body: 'x'.repeat(20 * 1024) })
  t.equal(tooLarge.status, 413)
  await request(`${url}/_balancer/stats`, { agent }) // admin paths are not proxied, not counted

  const expected = { accepted: 42, refused: 28, unavailable: 4, other: 4 }
  const stats = JSON.parse((await request(`${url}/_balancer/stats`, { agent })).body) as StatsBody
  t.match(stats, { strategy: 'round-robin', upstreams: [{ url: upstream, healthy: true, requests: 78, failures: 0 }] }, 'the contract\'s fields, as they were')
  t.same(stats.upstreams[0]?.answers, expected, 'accepted 2xx, refused 401/403, unavailable 503, other: everything else')
  t.same(stats.ownAnswers, { accepted: 0, refused: 0, unavailable: 0, other: 1 }, 'the balancer\'s own 413')

  const stream = await subscribe(t, url)
  const hello = (await stream.next('hello')).data as { upstreams: Array<{ url: string, answers: Answers }>, ownAnswers: Answers }
  t.same(hello.upstreams.map((u) => [u.url, u.answers]), [[upstream, expected]], 'a page starts from what passed before it opened')
  t.same(hello.ownAnswers, stats.ownAnswers)
  t.ok(Number.isInteger((hello as { startedAt?: unknown }).startedAt), 'when the balancer started: a page seeing another start counts afresh')

  const after = stream.frames.length
  await send('/status/200', 5)
  await send('/status/401', 3)
  let latest: Answers | undefined
  let reported = 0
  await waitFor('the batches to report all eight', () => {
    reported = 0
    for (const frame of stream.frames.slice(after)) {
      if (frame.event !== 'requests') continue
      const batch = frame.data as { requests: unknown[], answers: Record<string, Answers> }
      reported += batch.requests.length
      latest = batch.answers[upstream]
    }
    return reported === 8
  })
  t.same(latest, { ...expected, accepted: 47, refused: 31 }, 'each batch carries the totals, the batch\'s own requests included')
})

t.test('answers: a 502 or 504 counts for the upstream that failed, a 503 with no upstream left is the balancer\'s own', async (t) => {
  const dead = await deadUrl()
  const { url, balancer } = await startBalancer(t, [dead])
  const agent = clientAgent(t)
  // Not retried (a POST), refused: a 502 for the one upstream tried, which is then taken out.
  const refused = await request(`${url}/login`, { agent, method: 'POST', body: '{}' })
  t.equal(refused.status, 502)
  const none = await request(`${url}/feeds`, { agent })
  t.equal(none.status, 503)
  const stats = balancer.stats() as unknown as StatsBody
  t.match(stats.upstreams[0], { url: dead, healthy: false, failures: 1, answers: { accepted: 0, refused: 0, unavailable: 0, other: 1 } })
  t.same(stats.ownAnswers, { accepted: 0, refused: 0, unavailable: 1, other: 0 })

  // Silent past PROXY_TIMEOUT_MS: the 504 counts for the upstream that kept the client waiting.
  const slow = await startUpstream(t, 'app-1', { slowMs: 5000 })
  const timing = await startBalancer(t, [slow.url], { proxyTimeoutMs: 200 })
  t.equal((await request(`${timing.url}/slow`, { agent })).status, 504)
  t.match(timing.balancer.stats().upstreams[0], { url: slow.url, answers: { accepted: 0, refused: 0, unavailable: 0, other: 1 } })
})

t.test('the dashboard page and its files', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [up.url])
  const agent = clientAgent(t)
  for (const path of ['/_balancer/', '/_balancer/dashboard']) {
    const page = await request(`${url}${path}`, { agent })
    t.equal(page.status, 200, path)
    t.match(page.headers['content-type'], /^text\/html/)
    t.match(page.headers['content-security-policy'], /default-src 'none'/, 'nothing from another origin can load')
    t.match(page.body, '<script type="module" src="main.js">')
    t.notMatch(page.body, /https?:\/\//, 'no CDN, no external link')
  }
  // The page's modules, followed from main.js through every import: each one is served, as
  // JavaScript (a module with another type is refused by the browser), naming no other site.
  const modules = new Set<string>(['main.js'])
  for (const name of modules) {
    const script = await request(`${url}/_balancer/${name}`, { agent })
    t.equal(script.status, 200, name)
    t.match(script.headers['content-type'], /^text\/javascript/, name)
    t.notMatch(script.body.replaceAll('http://www.w3.org/2000/svg', ''), /https?:\/\//, `${name} names no other site (the SVG namespace aside)`)
    for (const match of script.body.matchAll(/^import .* from '\.\/([\w-]+\.js)'$/gm)) modules.add(match[1] as string)
  }
  t.ok(modules.size >= 8, `the page is ${modules.size} modules: ${[...modules].join(', ')}`)
  t.match((await request(`${url}/_balancer/dashboard.css`, { agent })).headers['content-type'], /^text\/css/)
  t.equal((await request(`${url}/_balancer/`, { agent, method: 'HEAD' })).status, 200)
  t.equal((await request(`${url}/_balancer/`, { agent, method: 'POST' })).status, 405)
  t.equal((await request(`${url}/_balancer/events`, { agent, method: 'POST' })).status, 405)
  t.equal(up.received, 0, 'none of it reached an app server')
})

t.test('control: 501 without a launcher, and guarded against other sites', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [up.url])
  const agent = clientAgent(t)
  const json = { 'content-type': 'application/json' }
  const none = await request(`${url}/_balancer/control`, { agent, method: 'POST', headers: json, body: '{"action":"stop","target":"app-1"}' })
  t.equal(none.status, 501)
  t.match(JSON.parse(none.body), { error: 'control_unavailable', message: /npm start/ })
  const form = await request(`${url}/_balancer/control`, { agent, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'action=stop' })
  t.equal(form.status, 415, 'a plain form post is refused')
  const foreign = await request(`${url}/_balancer/control`, { agent, method: 'POST', headers: { ...json, origin: 'http://evil.example' }, body: '{}' })
  t.equal(foreign.status, 403, 'another origin is refused')
  t.equal((await request(`${url}/_balancer/control`, { agent })).status, 405)
})

t.test('control: relayed to the launcher, and the answer sent to every page', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const calls: string[] = []
  const info: ClusterInfo = { mode: 'memory', targets: [{ id: 'app-1', kind: 'server', running: true, url: up.url }] }
  const control: ClusterControl = {
    info: async () => info,
    act: async (action, target) => {
      calls.push(`${action} ${target}`)
      if (target !== 'app-1') throw new Error(`no process named "${target}"`)
      return { ...info, targets: [{ ...info.targets[0]!, running: action === 'start' }] }
    }
  }
  const b = createBalancer(testConfig([up.url]), undefined, { control })
  const url = await b.listen()
  t.teardown(async () => { b.server.closeAllConnections(); await b.close() })
  const stream = await subscribe(t, url)
  t.match((await stream.next('hello')).data, { control: { enabled: true } })
  t.same((await stream.next('cluster')).data, info, 'the page learns the targets')

  const agent = clientAgent(t)
  const json = { 'content-type': 'application/json', origin: url }
  const stop = await request(`${url}/_balancer/control`, { agent, method: 'POST', headers: json, body: '{"action":"stop","target":"app-1"}' })
  t.equal(stop.status, 200)
  t.match(JSON.parse(stop.body), { ok: true, cluster: { targets: [{ id: 'app-1', running: false }] } })
  const missing = await request(`${url}/_balancer/control`, { agent, method: 'POST', headers: json, body: '{"action":"stop","target":"app-9"}' })
  t.equal(missing.status, 409)
  t.match(JSON.parse(missing.body), { error: 'control_failed', message: /app-9/ })
  for (const body of ['nope', '{"action":"restart","target":"app-1"}', '{"action":"stop","target":"../x y"}']) {
    t.equal((await request(`${url}/_balancer/control`, { agent, method: 'POST', headers: json, body })).status, 400, body)
  }
  t.same(calls, ['stop app-1', 'stop app-9'])
})

t.test('createIpcControl: requests and replies over a channel', async (t) => {
  const channel = new EventEmitter() as EventEmitter & { send: (m: unknown) => boolean }
  const sent: ControlRequest[] = []
  channel.send = (message) => {
    const request = message as ControlRequest
    sent.push(request)
    setImmediate(() => {
      if (request.target === 'nobody') channel.emit('message', { type: 'balancer:control-reply', id: request.id, ok: false, error: 'no such process' })
      else channel.emit('message', { type: 'balancer:control-reply', id: request.id, ok: true, info: { mode: 'jwt', targets: [] } })
    })
    return true
  }
  const control = createIpcControl(channel)
  t.same(await control.info(), { mode: 'jwt', targets: [] })
  t.same(await control.act('stop', 'app-2'), { mode: 'jwt', targets: [] })
  await t.rejects(control.act('stop', 'nobody'), /no such process/)
  t.match(sent, [{ action: 'info' }, { action: 'stop', target: 'app-2' }, { action: 'stop', target: 'nobody' }])

  const gone = createIpcControl({ send: () => false, on: () => {} })
  await t.rejects(gone.info(), /launcher is gone/)
  const silent = createIpcControl({ send: () => true, on: () => {} }, 50)
  // The control's timer does not keep a process alive (the balancer's server does); here, this does.
  const keepAlive = setTimeout(() => {}, 1000)
  await t.rejects(silent.info(), /did not answer within 50 ms/)
  clearTimeout(keepAlive)
})

t.test('reasonOf: what the headers alone tell', async (t) => {
  t.equal(reasonOf(200, undefined, 'app-1'), null)
  t.equal(reasonOf(401, 'Bearer realm="auth-cluster"', 'app-1'), 'missing_token')
  t.equal(reasonOf(401, 'Bearer realm="auth-cluster", error="invalid_token", error_description="expired"', 'app-1'), 'expired')
  t.equal(reasonOf(401, undefined, 'app-1'), 'invalid_credentials')
  t.equal(reasonOf(503, undefined, 'app-1'), 'session_store_unavailable')
  t.equal(reasonOf(503, undefined, null), 'no_healthy_upstream')
  t.equal(reasonOf(502, undefined, null), 'bad_gateway')
  t.equal(reasonOf(504, undefined, null), 'gateway_timeout')
  t.equal(reasonOf(404, undefined, 'app-1'), null)
})
