// The balancer process: the only file here that reads the environment,
// listens for signals or exits.
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { ConfigError } from '../lib/config.ts'
import { loggerOptions } from '../lib/logger.ts'
import { reportListeningPort } from '../lib/report-port.ts'
import { createBalancer } from './balancer.ts'
import { loadBalancerConfig } from './config.ts'
import { createIpcControl } from './control.ts'
import type { BalancerConfig } from './config.ts'
import { createDnsDiscovery } from './discovery-dns.ts'

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
const balancer = createBalancer(config, logger, { control })
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
closeWithGrace({ delay: 10_000, logger }, async ({ signal, err, manual }) => {
  if (err !== undefined) logger.error({ err }, 'closing because of an error')
  else logger.info({ signal, manual }, 'closing')
  for (const discovery of discoveries) discovery.stop()
  await balancer.close()
})

try {
  const url = await balancer.listen()
  reportListeningPort(balancer.server, logger)
  for (const discovery of discoveries) discovery.start()
  logger.info({ url, upstreams: balancer.upstreams, dns: config.dns, pools: config.pools, routes: config.routes, healthIntervalMs: config.healthIntervalMs, strategy: config.strategy, control: control !== undefined }, `balancer listening on ${url}`)
} catch (err) {
  logger.fatal({ err, host: config.host, port: config.port }, 'cannot listen')
  await balancer.close()
  process.exit(1)
}
