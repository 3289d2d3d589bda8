// The forwarding itself (node:http, no http-proxy): what passes, what stays on its hop,
// and what must not take the process down.
import { createHash } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { clientAgent, request, socketCount, startBalancer, waitFor } from './fixtures/helpers.ts'

interface Teardown { teardown (fn: () => unknown): void }

/** An upstream whose answers the test writes itself. */
async function upstreamWith (t: Teardown, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler)
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** An upstream that answers every request with these bytes, as they are. */
async function rawUpstream (t: Teardown, raw: string): Promise<string> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => { socket.end(Buffer.from(raw, 'latin1')) })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('hop-by-hop headers stay on their hop, both ways', async (t) => {
  const seen: http.IncomingHttpHeaders[] = []
  const up = await upstreamWith(t, (req, res) => {
    seen.push(req.headers)
    res.writeHead(200, { 'content-type': 'text/plain', 'keep-alive': 'timeout=72', 'x-served-by': 'app-1' })
    res.end('ok')
  })
  const { url, balancer } = await startBalancer(t, [up])
  const agent = clientAgent(t)

  const reply = await request(`${url}/`, { agent, headers: { connection: 'close', 'keep-alive': 'timeout=1', te: 'trailers' } })
  t.equal(reply.status, 200)
  t.equal(reply.body, 'ok')
  t.equal(reply.headers['x-served-by'], 'app-1', 'end-to-end headers pass')
  t.not(reply.headers['keep-alive'], 'timeout=72', "the upstream's keep-alive promise is not passed on")
  t.equal(seen[0]?.connection, 'keep-alive', "the client's Connection: close does not reach the pooled upstream socket")
  t.equal(seen[0]?.te, undefined)
  t.equal(seen[0]?.['keep-alive'], undefined)
  await waitFor('the upstream socket to go back to the pool', () => socketCount(balancer.agent).free === 1)
})

t.test('a large body passes whole, with back-pressure, chunked or not', async (t) => {
  const body = Buffer.alloc(8 * 1024 * 1024, 'abcdefghij')
  const digest = createHash('sha256').update(body).digest('hex')
  const up = await upstreamWith(t, (req, res) => {
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      for (let i = 0; i < body.length; i += 65536) res.write(body.subarray(i, i + 65536))
      res.end()
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
      res.end(body)
    }
  })
  const { url } = await startBalancer(t, [up])
  for (const path of ['/length', '/chunked']) {
    const got = await new Promise<{ hash: string, length: number, headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      http.get(`${url}${path}`, { agent: false }, (res) => {
        const hash = createHash('sha256')
        let length = 0
        // A slow reader: the balancer must pause the upstream, not buffer 8 MiB.
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk)
          length += chunk.length
          res.pause()
          setTimeout(() => res.resume(), 1)
        })
        res.on('end', () => { resolve({ hash: hash.digest('hex'), length, headers: res.headers }) })
        res.on('error', reject)
      }).on('error', reject)
    })
    t.equal(got.length, body.length, `${path}: every byte`)
    t.equal(got.hash, digest, `${path}: the same bytes`)
    if (path === '/chunked') t.equal(got.headers['transfer-encoding'], 'chunked', 'Node frames it again')
    else t.equal(got.headers['content-length'], String(body.length))
  }
})

t.test("an upstream's odd reason phrase is not copied, and cannot crash the balancer", async (t) => {
  const up = await rawUpstream(t, 'HTTP/1.1 200 O\x01K\r\ncontent-length: 2\r\nx-served-by: app-1\r\n\r\nok')
  const { url } = await startBalancer(t, [up])
  const reply = await request(`${url}/`, { agent: clientAgent(t) })
  t.equal(reply.status, 200)
  t.equal(reply.body, 'ok')
  t.equal(reply.headers['x-served-by'], 'app-1')
})

t.test('an upstream header Node will not write is a 502, not a crash', async (t) => {
  const up = await rawUpstream(t, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-odd: a\x7fb\r\n\r\nok')
  const { url, balancer } = await startBalancer(t, [up])
  const reply = await request(`${url}/`, { agent: clientAgent(t) })
  t.equal(reply.status, 502)
  t.match(JSON.parse(reply.body), { error: 'bad_gateway', reason: String })
  t.notMatch(reply.body, up, 'no internal address in the answer')
  t.equal(balancer.stats().upstreams[0]?.healthy, true, 'a bad answer is not a dead upstream')
  const again = await request(`${url}/`, { agent: clientAgent(t) })
  t.equal(again.status, 502, 'and the balancer is still serving')
})

t.test('an absolute-form request target goes upstream as a path', async (t) => {
  const urls: string[] = []
  const up = await upstreamWith(t, (req, res) => { urls.push(req.url ?? ''); res.end('ok') })
  const { url } = await startBalancer(t, [up])
  const port = new URL(url).port
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write('GET http://example.test/feeds?x=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n')
    })
    let data = ''
    socket.on('data', (chunk) => { data += chunk.toString() })
    socket.on('end', () => { resolve(data) })
    socket.on('error', reject)
  })
  t.match(raw, /^HTTP\/1\.1 200 /)
  t.same(urls, ['/feeds?x=1'])
})
