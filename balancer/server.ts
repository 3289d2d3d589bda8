// The balancer process: the only file here that reads the environment,
// listens for signals or exits.
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { ConfigError } from '../lib/config.ts'
import { loggerOptions } from '../lib/logger.ts'
import { reportListeningPort } from '../lib/report-port.ts'
import { loadBalancerConfig } from './config.ts'
import { createIpcControl } from './control.ts'
import type { BalancerConfig } from './config.ts'
import { createDnsDiscovery } from './discovery-dns.ts'
import { createThreadedBalancer } from './threads.ts'

let config: BalancerConfig
try {
  config = loadBalancerConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`balancer: ${err.message}\n`)
  process.exit(1)
}

const logger = pino(loggerOptions(config.balancerId, config.logLevel))
// Spawned by the local launcher with an IPC channel: the dashboard's stop/start
// buttons are relayed to it. The channel must not keep the process alive.
const control = process.send === undefined ? undefined : createIpcControl(process)
process.channel?.unref()
// BALANCER_THREADS above 1: this thread leads (health checks, dashboard, stats) and proxies; the
// others proxy on the same port (threads.ts). A thread that dies takes the balancer down with it.
const threaded = createThreadedBalancer(config, logger, { control, onFailure: (err) => { closeWithError(err) } })
const { balancer } = threaded
// UPSTREAMS_DNS (and UPSTREAMS_DNS_<POOL>): a pool's upstream set follows what its name
// resolves to (Compose replicas, a headless Service's pods).
const discoveries = [
  ...(config.dns === undefined ? [] : [createDnsDiscovery({ ...config.dns, logger, onChange: (urls) => { balancer.setUpstreams(urls) } })]),
  ...(config.pools ?? []).flatMap((pool) => pool.dns === undefined
    ? []
    : [createDnsDiscovery({ ...pool.dns, logger: logger.child({ pool: pool.name }), onChange: (urls) => { balancer.setUpstreams(urls, pool.name) } })])
]

// On SIGINT/SIGTERM (or a crash): stop accepting, let requests in flight
// finish, free the upstream sockets; after 10 s close-with-grace exits anyway.
const grace = closeWithGrace({ delay: 10_000, logger }, async ({ signal, err, manual }) => {
  if (err !== undefined) logger.error({ err }, 'closing because of an error')
  else logger.info({ signal, manual }, 'closing')
  for (const discovery of discoveries) discovery.stop()
  await threaded.close()
})

function closeWithError (err: Error): void {
  logger.fatal({ err }, 'a balancer thread failed')
  process.exitCode = 1
  grace.close()
}

try {
  const url = await threaded.listen()
  reportListeningPort(balancer.server, logger)
  for (const discovery of discoveries) discovery.start()
  logger.info({ url, upstreams: balancer.upstreams, dns: config.dns, pools: config.pools, routes: config.routes, healthIntervalMs: config.healthIntervalMs, strategy: config.strategy, threads: config.threads ?? 1, control: control !== undefined }, `balancer listening on ${url}`)
} catch (err) {
  logger.fatal({ err, host: config.host, port: config.port }, 'cannot listen')
  await threaded.close()
  process.exit(1)
}
