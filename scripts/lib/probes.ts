import { connect } from 'node:net'
import { request } from 'node:http'

/** True when GET url answers 200 within the timeout. */
export async function httpOk (url: string, timeoutMs = 1000): Promise<boolean> {
  return await new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.once('timeout', () => req.destroy())
    req.once('error', () => resolve(false))
    req.end()
  })
}

/** True when a Redis server at host:port answers PING. */
export async function redisPong (port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ port, host, timeout: timeoutMs })
    let reply = ''
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}

/** True when the balancer at `url` answers GET /_balancer/stats and counts every upstream healthy. */
export async function balancerAllHealthy (url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(`${url}/_balancer/stats`, { signal: AbortSignal.timeout(timeoutMs) })
    const stats = await res.json() as { upstreams?: Array<{ healthy?: unknown }> }
    return Array.isArray(stats.upstreams) && stats.upstreams.every((u) => u.healthy === true)
  } catch {
    return false
  }
}
