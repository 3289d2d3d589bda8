import { createDelayProxy } from './delay-proxy.ts'

/**
 * The delay proxy as a process of its own, so its work never lands on an app server's event
 * loop: `node delay-proxy-server.ts <listen-port> <target-host:port> <delay-ms>`.
 */
const [listen, target, delay] = process.argv.slice(2)
const [host, port] = (target ?? '').split(':')
const listenPort = Number(listen)
const delayMs = Number(delay)
if (!Number.isInteger(listenPort) || host === undefined || host === '' || !Number.isInteger(Number(port)) || !(delayMs >= 0)) {
  process.stderr.write('usage: node delay-proxy-server.ts <listen-port> <target-host:port> <delay-ms>\n')
  process.exit(2)
}
const server = createDelayProxy({ targetHost: host, targetPort: Number(port), delayMs })
server.on('error', (err) => {
  process.stderr.write(`delay proxy: ${err.message}\n`)
  process.exit(1)
})
server.listen(listenPort, '127.0.0.1', () => {
  process.stdout.write(`delay proxy on 127.0.0.1:${listenPort} -> ${host}:${port}, +${delayMs} ms per round trip\n`)
})
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0))
