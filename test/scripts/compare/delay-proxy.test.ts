import { connect, type Socket } from 'node:net'
import t from 'tap'
import { startPrivateRedis } from '../../../scripts/compare/private-redis.ts'

/** A raw RESP connection: what we write and read is exactly what crosses the proxy. */
async function open (url: string): Promise<{ socket: Socket, read: (until: (text: string) => boolean) => Promise<string> }> {
  const { hostname, port } = new URL(url)
  const socket = connect({ host: hostname, port: Number(port) })
  socket.setNoDelay(true)
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  let buffer = ''
  let waiter: (() => void) | undefined
  socket.on('data', (chunk: Buffer) => { buffer += chunk.toString(); waiter?.() })
  const read = async (until: (text: string) => boolean): Promise<string> => {
    while (!until(buffer)) await new Promise<void>((resolve) => { waiter = resolve })
    const text = buffer
    buffer = ''
    return text
  }
  return { socket, read }
}

async function fastestPing (url: string, times = 5): Promise<number> {
  const { socket, read } = await open(url)
  let best = Infinity
  for (let i = 0; i < times; i++) {
    const t0 = performance.now()
    socket.write('PING\r\n')
    await read((s) => s.includes('+PONG\r\n'))
    best = Math.min(best, performance.now() - t0)
  }
  socket.destroy()
  return best
}

t.test('--redis-latency-ms: the proxy adds the delay to every round trip, and Redis still answers through it', async (t) => {
  const redis = await startPrivateRedis({ delayMs: 40 })
  t.teardown(async () => await redis.stop())
  t.not(redis.url, redis.directUrl, 'the servers get the proxy, not Redis itself')
  const direct = await fastestPing(redis.directUrl)
  const delayed = await fastestPing(redis.url)
  t.ok(delayed >= 39, `through the proxy the fastest of 5 PINGs took ${delayed.toFixed(1)} ms: at least the 40 ms asked for`)
  t.ok(delayed > direct, `and more than straight to Redis (${direct.toFixed(1)} ms)`)
})

t.test('the proxy keeps the order of a pipeline, whether it arrives in one piece or in many', async (t) => {
  const redis = await startPrivateRedis({ delayMs: 10 })
  t.teardown(async () => await redis.stop())
  const { socket, read } = await open(redis.url)
  t.teardown(() => socket.destroy())
  const replies = (n: number) => (s: string): boolean => (s.match(/\r\n/g) ?? []).length >= n
  socket.write('INCR n\r\n'.repeat(100))
  for (let i = 0; i < 100; i++) socket.write('INCR n\r\n')
  const text = await read(replies(200))
  t.same(text.trim().split('\r\n'), Array.from({ length: 200 }, (_, i) => `:${i + 1}`))
})

t.test('with no delay, the servers talk to Redis directly and no proxy runs', async (t) => {
  const redis = await startPrivateRedis()
  t.teardown(async () => await redis.stop())
  t.equal(redis.url, redis.directUrl)
  t.equal(redis.delayMs, 0)
})
