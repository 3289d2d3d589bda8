import { createServer } from 'node:net'

/**
 * Asks the OS for a free port on 127.0.0.1, and frees it. Another process can take it before the
 * caller's child binds it: where a child can bind port 0 and report its port, let it (the app
 * servers and the balancer); otherwise try again on a fresh port when the child finds it taken
 * (redis-server), or fail with the child's own EADDRINUSE.
 */
export async function freePort (): Promise<number> {
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

/** Resolves true when nothing listens on the port, so a launch can say "port taken" before it starts anything. */
export async function isPortFree (port: number, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
}
