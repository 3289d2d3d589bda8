import t from 'tap'
import { rawExchange, rawJson } from '../helpers/raw-http.ts'
import { clientAgent, request, startBalancer, startUpstream } from './fixtures/helpers.ts'

// Requests no polite client sends, written byte for byte to a socket. Each must get one
// JSON 4xx from the balancer itself, the connection closed, nothing passed on.
const REFUSED: Array<{ name: string, data: string, status: number }> = [
  { name: 'Content-Length and Transfer-Encoding together (CL.TE smuggling)', data: 'POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding before Content-Length (TE.CL)', data: 'POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n', status: 400 },
  { name: 'two different Content-Lengths', data: 'POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde', status: 400 },
  { name: 'Transfer-Encoding: chunked, identity', data: 'POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding with a space before the colon', data: 'POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'a malformed chunk size', data: 'POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', status: 400 },
  { name: 'a header folded over two lines (obs-fold)', data: 'GET /feeds HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', status: 400 },
  { name: 'a NUL byte in the path', data: 'GET /fe\x00eds HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'not HTTP at all', data: 'HELLO THERE\r\n\r\n', status: 400 },
  { name: 'bare LF line endings', data: 'GET /feeds HTTP/1.1\nHost: x\n\n', status: 400 },
  { name: 'HTTP/2 preface on a plain port', data: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', status: 400 },
  { name: 'headers over 8 KiB', data: `GET /feeds HTTP/1.1\r\nHost: x\r\nCookie: auth=${'a'.repeat(9000)}\r\n\r\n`, status: 431 },
  { name: 'a URL over 8 KiB', data: `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 431 },
  { name: 'CONNECT', data: 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', status: 405 }
]

t.test('what the HTTP parser refuses is a JSON 4xx from the balancer, and nothing reaches an upstream', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [up.url])
  const port = Number(new URL(url).port)
  for (const { name, data, status } of REFUSED) {
    const answer = await rawJson(port, data)
    t.equal(answer.status, status, `${name}: ${status}`)
    t.match(answer.headers['content-type'], /^application\/json/, `${name}: JSON`)
    t.match(answer.json, { error: String }, `${name}: an error body`)
    t.equal(answer.count, 1, `${name}: exactly one response (no smuggled second one)`)
    t.ok(answer.closed, `${name}: the connection is closed`)
  }
  t.equal(up.received, 0, 'not one of them was passed on')
  const agent = clientAgent(t)
  t.equal((await request(`${url}/after`, { agent })).status, 200, 'the balancer still serves')
})

t.test('odd but well-formed requests are passed on for the app to answer', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url } = await startBalancer(t, [up.url])
  const port = Number(new URL(url).port)
  const passed: Array<[string, string]> = [
    ['no Host header', 'GET /feeds HTTP/1.1\r\nConnection: close\r\n\r\n'],
    ['absolute-form target', 'GET http://elsewhere.example/feeds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['an Upgrade request (not proxied as a tunnel)', 'GET /feeds HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
    ['an unusual method', 'PROPFIND /feeds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']
  ]
  for (const [name, data] of passed) {
    const answer = await rawJson(port, data)
    t.equal(answer.status, 200, `${name}: reached the upstream`)
  }
  const before = up.received
  const options = await rawJson(port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  t.equal(options.status, 204, 'OPTIONS * (about the server as a whole) is answered by the balancer')
  t.equal(options.headers.allow, 'GET, HEAD, POST, OPTIONS')
  const star = await rawJson(port, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  t.equal(star.status, 400, 'GET * means nothing: 400')
  t.same(star.json, { error: 'bad_request', reason: 'asterisk_target_needs_options' })
  t.equal(up.received, before, 'neither reached an upstream')
})

// HTTP/1.1 pipelining (RFC 9112 9.3.2): responses go out in the order of the requests. A request
// the parser refuses, right behind one still waiting for its upstream, is answered after it.
t.test('a malformed request behind one in flight: the first is answered first, then the 400', async (t) => {
  const up = await startUpstream(t, 'app-1', { slowMs: 50 })
  const { url } = await startBalancer(t, [up.url])
  const port = Number(new URL(url).port)
  const body = '{"username":"alice","password":"wonderland"}'
  const login = `POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  for (const [name, malformed] of [
    ['a malformed header line', 'GET /feeds HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n'],
    ['not HTTP at all', 'HELLO\r\n\r\n']
  ]) {
    const { responses, closed } = await rawExchange(port, login + malformed, 5000)
    t.equal(responses[0]?.status, 200, `${name}: the first answer on the wire is the one in flight`)
    t.match(JSON.parse(responses[0]?.body ?? '{}'), { servedBy: 'app-1', url: '/slow', body }, `${name}: with its body`)
    t.equal(responses[1]?.status, 400, `${name}: then the refusal`)
    t.match(JSON.parse(responses[1]?.body ?? '{}'), { error: 'bad_request' })
    t.equal(responses.length, 2, `${name}: nothing else`)
    t.ok(closed, `${name}: the connection is closed`)
  }
  t.equal(up.received, 2, 'only the valid requests reached the upstream')
})
