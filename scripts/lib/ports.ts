import { createServer } from 'node:net'

/** Asks the OS for a free port on 127.0.0.1. Another process could take it before we do; callers report that clearly. */
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
