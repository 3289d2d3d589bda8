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
  const MiB = 1024 * 1024
  const body = Buffer.alloc(8 * MiB, 'abcdefghij')
  const digest = createHash('sha256').update(body).digest('hex')
  // What each side has seen so far, to tell a balancer that streams from one that holds a body
  // back until it has all of it: such a balancer passes every byte too, but only at the end.
  let clientGot = 0
  let upstreamGot = 0
  const firstBytesThrough: Record<string, boolean> = {}
  const waitThrough = async (what: string, check: () => boolean): Promise<void> => {
    firstBytesThrough[what] = await waitFor(what, check, 3000).then(() => true, () => false)
  }
  const up = await upstreamWith(t, (req, res) => {
    if (req.url === '/upload') {
      const hash = createHash('sha256')
      req.on('data', (chunk: Buffer) => { upstreamGot += chunk.length; hash.update(chunk) })
      req.on('end', () => { res.end(JSON.stringify({ length: upstreamGot, hash: hash.digest('hex') })) })
    } else if (req.url === '/lockstep') {
      // The first MiB, then the rest only once the client has begun to receive it.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
      res.write(body.subarray(0, MiB))
      waitThrough('response', () => clientGot > 0).then(() => { res.end(body.subarray(MiB)) }, () => {})
    } else if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      for (let i = 0; i < body.length; i += 65536) res.write(body.subarray(i, i + 65536))
      res.end()
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
      res.end(body)
    }
  })
  const { url } = await startBalancer(t, [up], { maxBodyBytes: 16 * MiB })
  for (const path of ['/length', '/chunked', '/lockstep']) {
    clientGot = 0
    const got = await new Promise<{ hash: string, headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      http.get(`${url}${path}`, { agent: false }, (res) => {
        const hash = createHash('sha256')
        // A slow reader: the balancer must pause the upstream, not buffer 8 MiB.
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk)
          clientGot += chunk.length
          res.pause()
          setTimeout(() => res.resume(), 1)
        })
        res.on('end', () => { resolve({ hash: hash.digest('hex'), headers: res.headers }) })
        res.on('error', reject)
      }).on('error', reject)
    })
    t.equal(clientGot, body.length, `${path}: every byte`)
    t.equal(got.hash, digest, `${path}: the same bytes`)
    if (path === '/chunked') t.equal(got.headers['transfer-encoding'], 'chunked', 'Node frames it again')
    else t.equal(got.headers['content-length'], String(body.length))
  }
  t.equal(firstBytesThrough.response, true, "the response's first MiB reached the client before the upstream sent the rest")

  // The other way: the client's first MiB must reach the upstream before the client sends the rest.
  const uploaded = await new Promise<{ length: number, hash: string }>((resolve, reject) => {
    const req = http.request(`${url}/upload`, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() })
      res.on('end', () => { resolve(JSON.parse(text) as { length: number, hash: string }) })
    })
    req.on('error', reject)
    req.write(body.subarray(0, MiB))
    waitThrough('request', () => upstreamGot > 0).then(() => { req.end(body.subarray(MiB)) }, reject)
  })
  t.equal(firstBytesThrough.request, true, "the request's first MiB reached the upstream before the client sent the rest")
  t.same(uploaded, { length: body.length, hash: digest }, 'the request body arrived whole')

  // Back-pressure: while the client reads nothing, the upstream can send no more than the
  // buffers between them hold (kernel buffers on loopback: a few MiB), not a 64 MiB answer.
  let sent = 0
  const big = Buffer.alloc(64 * 1024, 'z')
  const endless = await upstreamWith(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1024 * big.length })
    let chunks = 0
    const more = (): void => {
      while (chunks < 1024) {
        chunks++
        sent += big.length
        if (!res.write(big)) { res.once('drain', more); return }
      }
      res.end()
    }
    more()
  })
  const { url: url2 } = await startBalancer(t, [endless], { proxyTimeoutMs: 10_000 })
  const received = await new Promise<number>((resolve, reject) => {
    http.get(`${url2}/big`, { agent: false }, (res) => {
      res.pause()
      waitFor('the upstream to stop sending', async () => {
        const before = sent
        await new Promise((resolve) => setTimeout(resolve, 200))
        return sent > 0 && sent === before
      }, 5000).then(() => {
        t.ok(sent < 32 * MiB, `held back at ${(sent / MiB).toFixed(1)} MiB of 64 while the client read nothing`)
        let length = 0
        res.on('data', (chunk: Buffer) => { length += chunk.length })
        res.on('end', () => { resolve(length) })
        res.resume()
      }, reject)
      res.on('error', reject)
    }).on('error', reject)
  })
  t.equal(received, 64 * MiB, 'then every byte, once the client reads')
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
