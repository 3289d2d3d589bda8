// How a process started by the local launcher (scripts/lib/managed-process.ts, with PORT=0 and
// an IPC channel) tells it which port the OS gave: a port the launcher chose and handed over
// could be taken by another process before the child bound it. Used by the app server and the
// balancer alike; started any other way (no IPC channel), it does nothing.
import type { Server } from 'node:net'
import type { Logger } from 'pino'

export function reportListeningPort (server: Server, logger: Logger): void {
  if (process.send === undefined) return
  // The channel must not keep the process alive.
  process.channel?.unref()
  const address = server.address()
  if (typeof address !== 'object' || address === null) return
  process.send({ type: 'listening', port: address.port }, undefined, {}, (err: Error | null) => {
    if (err !== null) logger.warn({ err }, 'could not tell the launcher which port this process listens on')
  })
}
