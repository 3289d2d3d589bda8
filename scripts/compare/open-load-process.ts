import { closeConnections, runOpenLoad, type OpenLoadJob } from './open-load.ts'

/**
 * The open-model generator's own process, started by open-load-client.ts with an IPC channel:
 * one job at a time, each answered with its result. Its CPU and its event loop are its own, never
 * a server's, so its lateness (sendLagMs) is the generator's and the machine's, not the cluster's.
 */
if (process.send === undefined) {
  process.stderr.write('open-load-process.ts is started by npm run compare, with an IPC channel\n')
  process.exit(2)
}
const send = (message: unknown): void => { process.send?.(message) }

process.on('message', (message: { id: number, job: OpenLoadJob }) => {
  runOpenLoad(message.job)
    .then((result) => send({ id: message.id, type: 'done', result }))
    .catch((err: unknown) => send({ id: message.id, type: 'error', message: err instanceof Error ? err.message : String(err) }))
})
// The parent going away, however it goes, ends this process.
process.on('disconnect', () => {
  closeConnections()
  process.exit(0)
})
