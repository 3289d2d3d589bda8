import type { ClusterInfo, ControlReply, ControlRequest, ControlTarget } from '../../balancer/control.ts'
import type { LogSink, ManagedProcess } from './managed-process.ts'

/** What the launcher can stop and start: its app servers, and its private redis-server and PostgreSQL. */
export interface ControlledProcess {
  readonly running: boolean
  start (): Promise<void>
  stop (): Promise<void>
}

export interface ControlledCluster {
  mode: string
  servers: ReadonlyArray<ControlledProcess & { id: string, url: string }>
  redis: (ControlledProcess & { url: string }) | undefined
  postgres?: (ControlledProcess & { url: string }) | undefined
}

/**
 * Answers the balancer's control requests (the dashboard's stop and start
 * buttons) over its IPC channel. One action at a time, in order: a second
 * click waits for the first to finish.
 */
export function answerControlRequests (balancer: ManagedProcess, cluster: ControlledCluster, onLog: LogSink = () => {}): void {
  let queue: Promise<unknown> = Promise.resolve()
  balancer.onMessage = (message) => {
    const request = message as Partial<ControlRequest> | null
    if (request?.type !== 'balancer:control' || typeof request.id !== 'number') return
    const id = request.id
    queue = queue
      .then(async () => await handle(request))
      .then(
        (info): ControlReply => ({ type: 'balancer:control-reply', id, ok: true, info }),
        (err: unknown): ControlReply => ({ type: 'balancer:control-reply', id, ok: false, error: (err as Error).message })
      )
      .then((reply) => { balancer.send(reply) })
  }

  async function handle (request: Partial<ControlRequest>): Promise<ClusterInfo> {
    if (request.action === 'info') return info()
    const target = request.target === 'redis' ? cluster.redis : request.target === 'postgres' ? cluster.postgres : cluster.servers.find((s) => s.id === request.target)
    if (target === undefined) throw new Error(`no process named ${JSON.stringify(request.target)} that this launcher can stop or start`)
    if (request.action === 'stop') {
      log(`dashboard: stopping ${request.target}`)
      await target.stop()
    } else if (request.action === 'start') {
      log(`dashboard: starting ${request.target}`)
      await target.start()
    } else {
      throw new Error(`unknown action ${JSON.stringify(request.action)}`)
    }
    return info()
  }

  function info (): ClusterInfo {
    const targets: ControlTarget[] = cluster.servers.map((s) => ({ id: s.id, kind: 'server', running: s.running, url: s.url }))
    if (cluster.redis !== undefined) targets.push({ id: 'redis', kind: 'redis', running: cluster.redis.running, url: cluster.redis.url })
    if (cluster.postgres !== undefined) targets.push({ id: 'postgres', kind: 'postgres', running: cluster.postgres.running, url: cluster.postgres.url })
    return { mode: cluster.mode, targets }
  }

  function log (msg: string): void {
    onLog('launcher', JSON.stringify({ level: 30, time: Date.now(), msg }), 'stdout')
  }
}
