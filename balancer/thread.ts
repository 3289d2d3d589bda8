// A follower thread's entry (threads.ts starts it as a worker_thread): the same balancer on the
// same port (SO_REUSEPORT), with the leader's health, the shared round-robin positions, and the
// admin paths relayed to the leader. It touches no signal and no environment: the main thread
// (server.ts) owns the process, and says when to close.
import { parentPort, workerData } from 'node:worker_threads'
import { pino } from 'pino'
import { loggerOptions } from '../lib/logger.ts'
import { createBalancer } from './balancer.ts'
import { createAdminRelay, createRelayHub } from './thread-relay.ts'
import type { FollowerData, FollowerMessage, LeaderMessage } from './threads.ts'

if (parentPort === null) throw new Error('balancer/thread.ts runs as a worker thread of balancer/server.ts')
const port = parentPort
const data = workerData as FollowerData
const post = (message: FollowerMessage): void => { port.postMessage(message) }

const logger = pino(loggerOptions(data.config.balancerId, data.config.logLevel)).child({ thread: data.thread })
const events = createRelayHub((batch) => { post({ type: 'requests', events: batch, totals: balancer.totals() }) })
const admin = createAdminRelay(data.adminUrl)
const balancer = createBalancer(data.config, logger, {
  thread: {
    kind: 'follower',
    cursors: data.cursors,
    events,
    admin: admin.relay,
    markedDown: (pool, url) => { post({ type: 'down', pool, url }) }
  }
})
// What the leader knew when it started this thread: a set found by DNS, upstreams it took out.
for (const p of data.pools) {
  const pool = balancer.pool(p.name)
  if (pool === undefined) continue
  pool.setUpstreams(p.upstreams.map((u) => u.url))
  for (const u of p.upstreams) pool.setHealthy(u.url, u.healthy)
}

port.on('message', (message: LeaderMessage) => {
  switch (message.type) {
    case 'health':
      balancer.pool(message.pool)?.setHealthy(message.url, message.healthy)
      break
    case 'upstreams':
      balancer.pool(message.pool)?.setUpstreams(message.urls)
      break
    case 'active':
      events.setActive(message.active)
      // The leader's page starts from the totals: this thread's, now.
      if (message.active) post({ type: 'totals', totals: balancer.totals() })
      break
    case 'stats':
      post({ type: 'stats', id: message.id, stats: balancer.stats() })
      break
    case 'close':
      close().catch((err: unknown) => { logger.error({ err }, 'closing failed') })
      break
  }
})

async function close (): Promise<void> {
  await balancer.close()
  admin.close()
  port.close()
}

try {
  await balancer.listen()
  post({ type: 'listening' })
} catch (err) {
  logger.fatal({ err, port: data.config.port }, 'cannot listen')
  await balancer.close()
  throw err
}
