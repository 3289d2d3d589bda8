import { connect, createServer, type Server, type Socket } from 'node:net'

export interface DelayProxyOptions {
  /** Where to forward, e.g. a redis-server. */
  targetHost: string
  targetPort: number
  /** Added to every round trip: half on the way there, half on the way back. */
  delayMs: number
}

/**
 * A TCP proxy that holds every chunk for a while before passing it on, in order: a stand-in
 * for the network hop between app servers and a Redis on another machine. It knows nothing
 * of Redis; a command and its reply each wait delayMs / 2.
 */
export function createDelayProxy (options: DelayProxyOptions): Server {
  const oneWayMs = options.delayMs / 2
  return createServer((client) => {
    const upstream = connect({ host: options.targetHost, port: options.targetPort })
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const close = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close)
    upstream.on('error', close)
    client.on('close', close)
    upstream.on('close', close)
    delayedPipe(client, upstream, oneWayMs)
    delayedPipe(upstream, client, oneWayMs)
  })
}

function delayedPipe (from: Socket, to: Socket, delayMs: number): void {
  if (delayMs <= 0) {
    from.pipe(to)
    return
  }
  const queue: Array<{ due: number, chunk: Buffer }> = []
  let timer: NodeJS.Timeout | undefined
  let ended = false
  const flush = (): void => {
    timer = undefined
    const now = performance.now()
    // Timers fire at whole milliseconds: a chunk due within the next half millisecond goes now.
    while (queue.length > 0 && (queue[0] as { due: number }).due <= now + 0.5) {
      to.write((queue.shift() as { chunk: Buffer }).chunk)
    }
    if (queue.length > 0) timer = setTimeout(flush, (queue[0] as { due: number }).due - now)
    else if (ended) to.end()
  }
  from.on('data', (chunk: Buffer) => {
    queue.push({ due: performance.now() + delayMs, chunk })
    timer ??= setTimeout(flush, delayMs)
  })
  from.on('end', () => {
    ended = true
    if (queue.length === 0 && timer === undefined) to.end()
  })
}
