import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/**
 * A free port on 127.0.0.1 for a child that must be told its port (redis-server, PostgreSQL, a
 * launcher's --port in the tests), checked by listening on it and freed. Chosen at random below
 * the ephemeral range (net.ipv4.ip_local_port_range), which the OS never hands out by itself: a
 * port from that range, as port 0 gives, could go next to any process listening on port 0 (an app
 * server) or opening a connection, before the child binds it. Another process that picks ports
 * the same way can still take it first: where a child can bind port 0 and report its port, let it
 * (the app servers and the balancer); otherwise try again on a fresh port when the child finds it
 * taken (redis-server), or fail with the child's own EADDRINUSE.
 */
export async function freePort (): Promise<number> {
  const below = ephemeralPortStart()
  const from = Math.max(unprivilegedPortStart(), 1024, below - 12_000)
  const tries = from < below ? 50 : 0
  for (let attempt = 0; attempt < tries; attempt++) {
    const port = from + Math.floor(Math.random() * (below - from))
    if (await isPortFree(port)) return port
  }
  return await osPort()
}

/** The first port of the range the OS picks from for port 0 and outgoing connections; 32768 where it cannot be read. */
function ephemeralPortStart (): number {
  try {
    const value = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isInteger(value) && value > 0) return value
  } catch {}
  return 32768
}

/** A port the OS gives for port 0, freed: where no port below the ephemeral range is free. */
async function osPort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (typeof address === 'object' && address !== null) resolve(address.port)
        else reject(new Error('could not read the port the OS gave'))
      })
    })
  })
}

/** Whether this process can listen on the port, or the error code that says why not (EADDRINUSE, EACCES, ...). */
export type PortCheck = { free: true } | { free: false, code: string, message: string }

/** Tries to listen on the port, and frees it: so a launch can say what is wrong before it starts anything. */
export async function checkPort (port: number, host = '127.0.0.1'): Promise<PortCheck> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', (err: NodeJS.ErrnoException) => { resolve({ free: false, code: err.code ?? 'unknown', message: err.message }) })
    server.listen(port, host, () => server.close(() => { resolve({ free: true }) }))
  })
}

/** Resolves true when this process could listen on the port now. */
export async function isPortFree (port: number, host = '127.0.0.1'): Promise<boolean> {
  return (await checkPort(port, host)).free
}

/**
 * What to tell a user whose --port cannot be used, by the reason the OS gave: taken by another
 * process (EADDRINUSE) is not the same fix as a port only a privileged process may bind (EACCES:
 * below net.ipv4.ip_unprivileged_port_start, 1024 unless changed; ip(7)).
 */
export function portRefusal (port: number, check: { code: string, message: string }, unprivilegedFrom = unprivilegedPortStart()): string {
  switch (check.code) {
    case 'EADDRINUSE':
      return `port ${port} is taken: stop what uses it, or choose another with --port`
    case 'EACCES':
      return port < unprivilegedFrom
        ? `port ${port} needs privileges (below ${unprivilegedFrom}): choose --port ${unprivilegedFrom} or above, e.g. 8080`
        : `port ${port} is not open to this user (EACCES: a security policy forbids it): choose another with --port, e.g. 8080`
    default:
      return `port ${port} cannot be used (${check.message}): choose another with --port, e.g. 8080`
  }
}

/** The first port an unprivileged process may bind on Linux (a sysctl); 1024 where it cannot be read. */
export function unprivilegedPortStart (): number {
  try {
    const value = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim())
    if (Number.isInteger(value) && value >= 0) return value
  } catch {}
  return 1024
}
