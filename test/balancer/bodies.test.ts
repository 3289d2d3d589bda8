// Request bodies: the balancer's own limit (MAX_BODY_BYTES), and an upstream that answers before
// it has read a body (as Fastify does over its bodyLimit), which used to be a 502 EPIPE.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { tally, upload, type UploadOutcome } from '../helpers/upload.ts'
import { clientAgent, request, socketCount, startBalancer, startUpstream, waitFor } from './fixtures/helpers.ts'

interface Teardown { teardown (fn: () => unknown): void }

const KiB = 1024

/**
 * An upstream that answers every request at once, before reading its body, with Connection:
 * close, as Fastify answers a body over its bodyLimit: Node then closes the socket with the body
 * unread, and the kernel resets the connection under the balancer's next write.
 */
async function earlyAnswering (t: Teardown, status: number): Promise<{ url: string, answered: () => number }> {
  let answered = 0
  const server = http.createServer((_req, res) => {
    answered++
    const body = JSON.stringify({ error: 'refused_early', servedBy: 'app-early' })
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close', 'x-served-by': 'app-early' })
    res.end(body)
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, answered: () => answered }
}

t.test('a Content-Length over MAX_BODY_BYTES: 413 at once, no upstream contacted, connection closed', async (t) => {
  const up = await startUpstream(t, 'app-1')
  const { url, balancer } = await startBalancer(t, [up.url], { maxBodyBytes: 64 * KiB })
  // Twenty at once, with and without keep-alive on the client's side.
  const agent = clientAgent(t)
  const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => upload(`${url}/login`, 100_000, { chunked: false, agent: i % 2 === 0 ? agent : undefined })))
  t.same(tally(outcomes), { 413: 20 })
  t.ok(outcomes.every((o) => o.json?.error === 'payload_too_large' && o.json.limit === 64 * KiB), '{"error":"payload_too_large","limit":65536}')
  t.ok(outcomes.every((o) => o.headers.connection === 'close'), 'the connection is closed after it: the rest of the body is not forwarded')
  t.equal(up.received, 0, 'the upstream never saw them')
  t.same(socketCount(balancer.agent), { active: 0, free: 0 }, 'not even a connection was opened')
  t.same(balancer.stats().upstreams.map((u) => [u.requests, u.failures]), [[0, 0]])

  const exact = await upload(`${url}/login`, 64 * KiB, { chunked: false })
  t.equal(exact.status, 200, 'a body of exactly the limit passes')
  t.equal(up.received, 1)
})

t.test('a chunked body is counted as it streams: past the limit, a 413 and the upstream request aborted', async (t) => {
  // An upstream that reads every body to its end before answering, and tells what it got.
  const received: number[] = []
  let cutOff = 0
  const server = http.createServer((req, res) => {
    const index = received.push(0) - 1
    req.on('data', (chunk: Buffer) => { received[index] = (received[index] ?? 0) + chunk.length })
    req.on('end', () => { res.end(JSON.stringify({ received: received[index] })) })
    req.on('close', () => { if (!req.complete) cutOff++ })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const { url, balancer } = await startBalancer(t, [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], { maxBodyBytes: 64 * KiB })

  for (let i = 0; i < 5; i++) {
    // Half the limit first; the rest only once the upstream has it: the body streams, it is not held back.
    const answer = new Promise<{ status: number, json: Record<string, unknown>, connection: string | undefined }>((resolve, reject) => {
      const req = http.request(`${url}/upload`, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        let text = ''
        res.on('data', (chunk: Buffer) => { text += chunk.toString() })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown>, connection: res.headers.connection }) })
      })
      req.on('error', reject)
      req.write(Buffer.alloc(32 * KiB, 'a'))
      waitFor('the first half to reach the upstream', () => received[i] === 32 * KiB).then(() => {
        req.end(Buffer.alloc(64 * KiB, 'b'))
      }, reject)
    })
    const { status, json, connection } = await answer
    t.equal(status, 413, `try ${i}: 413`)
    t.same(json, { error: 'payload_too_large', limit: 64 * KiB }, `try ${i}: the balancer's own answer`)
    t.equal(connection, 'close', `try ${i}: and the connection closed`)
  }
  await waitFor('the upstream requests to be cut off', () => cutOff === 5)
  t.ok(received.every((bytes) => bytes >= 32 * KiB && bytes <= 64 * KiB), `no upstream got more than the limit (${received.join(', ')} bytes)`)
  t.same(balancer.stats().upstreams.map((u) => u.failures), [0], 'a client sending too much is no upstream failure')

  const whole = await upload(`${url}/upload`, 60 * KiB, { chunked: true })
  t.equal(whole.status, 200, 'a chunked body under the limit passes')
  t.same(whole.json, { received: 60 * KiB }, 'whole')
})

t.test("an upstream's early answer reaches the client while its body is still uploading", async (t) => {
  const early = await earlyAnswering(t, 401)
  const { url, balancer } = await startBalancer(t, [early.url])
  const keepAlive = clientAgent(t)
  for (const size of [100_000, 300_000, 900_000, 3_000_000]) {
    for (const chunked of [false, true]) {
      for (const agent of [undefined, keepAlive]) {
        const outcomes: UploadOutcome[] = []
        for (let i = 0; i < 20; i++) outcomes.push(await upload(`${url}/login`, size, { chunked, agent }))
        const how = `${size / 1000} kB ${chunked ? 'chunked' : 'with a Content-Length'}${agent === undefined ? '' : ', keep-alive'}`
        if (size < 1024 * KiB) {
          t.same(tally(outcomes), { 401: 20 }, `${how}: the upstream's 401, 20 of 20`)
        } else if (!chunked) {
          t.same(tally(outcomes), { 413: 20 }, `${how}: over the balancer's 1 MiB, its own 413 at once, 20 of 20`)
        } else {
          // Over the limit and chunked: the upstream's 401, or the balancer's 413 when the client's
          // first megabyte arrived before the upstream's answer (one process here, one event loop).
          t.ok(outcomes.every((o) => o.status === 401 || o.status === 413), `${how}: a 401 or a 413, 20 of 20 (${JSON.stringify(tally(outcomes))})`)
        }
      }
    }
  }
  const together = await Promise.all(Array.from({ length: 20 }, (_, i) => upload(`${url}/login`, 500_000, { chunked: i % 2 === 0, agent: i % 3 === 0 ? keepAlive : undefined })))
  t.same(tally(together), { 401: 20 }, 'twenty at once: 401 each')
  t.same(balancer.stats().upstreams.map((u) => u.failures), [0], 'an upstream refusing a body early is not failing')
  t.ok(early.answered() > 100)

  // The early answer left the keep-alive connection usable: what was left of the body was read and dropped.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { agent.destroy() })
  const first = await upload(`${url}/login`, 300_000, { chunked: true, agent })
  t.equal(first.status, 401)
  t.not(first.headers.connection, 'close', 'the upstream\'s Connection: close stays on its hop')
  const next = await request(`${url}/after`, { agent })
  t.equal(next.status, 401, 'the next request on the same connection is answered')
})
