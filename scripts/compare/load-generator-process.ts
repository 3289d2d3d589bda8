import { runLoad, type LoadJob } from './load-generator.ts'

/**
 * The load generator's own process, started by load-client.ts with an IPC channel: it runs
 * one job at a time and reports ticks and the result. Its CPU is its own, never a server's.
 * A `stop` message ends a job early (a warm-up that reached steady state).
 */
if (process.send === undefined) {
  process.stderr.write('load-generator-process.ts is started by npm run compare, with an IPC channel\n')
  process.exit(2)
}
const send = (message: unknown): void => { process.send?.(message) }
const running = new Map<number, AbortController>()

process.on('message', (message: { id: number, job: LoadJob } | { id: number, type: 'stop' }) => {
  if ('type' in message) {
    running.get(message.id)?.abort()
    return
  }
  const controller = new AbortController()
  running.set(message.id, controller)
  runLoad(message.job, (tick) => send({ id: message.id, type: 'tick', tick }), controller.signal)
    .then((result) => send({ id: message.id, type: 'done', result }))
    .catch((err: unknown) => send({ id: message.id, type: 'error', message: err instanceof Error ? err.message : String(err) }))
    .finally(() => running.delete(message.id))
})
// The parent going away, however it goes, ends this process.
process.on('disconnect', () => process.exit(0))
