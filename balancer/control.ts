/**
 * The dashboard's stop and start buttons. The balancer cannot stop an app
 * server or Redis itself: the process that started them can. Under the local
 * launcher (npm start) the balancer is spawned with an IPC channel and asks
 * the launcher over it; started any other way (docker compose, by hand) it
 * has no channel and the buttons say so.
 */

export interface ControlTarget {
  /** `app-1`..., `redis` or `postgres`. */
  id: string
  kind: 'server' | 'redis' | 'postgres'
  running: boolean
  url: string
}

export interface ClusterInfo {
  mode: string
  targets: ControlTarget[]
}

export type ControlAction = 'stop' | 'start'

export interface ClusterControl {
  info (): Promise<ClusterInfo>
  /** Stops or starts one target; resolves with the cluster as it is afterwards. */
  act (action: ControlAction, target: string): Promise<ClusterInfo>
}

/** balancer -> launcher */
export interface ControlRequest {
  type: 'balancer:control'
  id: number
  action: 'info' | ControlAction
  target?: string
}

/** launcher -> balancer */
export interface ControlReply {
  type: 'balancer:control-reply'
  id: number
  ok: boolean
  info?: ClusterInfo
  error?: string
}

/** What `process` offers a child spawned with an IPC channel. */
export interface IpcChannel {
  send?: ((message: unknown) => boolean) | undefined
  on (event: 'message', listener: (message: unknown) => void): unknown
}

/** A control that relays to the launcher over the process's IPC channel. */
export function createIpcControl (channel: IpcChannel, timeoutMs = 20_000): ClusterControl {
  const pending = new Map<number, { resolve: (info: ClusterInfo) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }>()
  let nextId = 1

  channel.on('message', (message) => {
    const reply = message as Partial<ControlReply> | null
    if (reply?.type !== 'balancer:control-reply' || typeof reply.id !== 'number') return
    const waiting = pending.get(reply.id)
    if (waiting === undefined) return
    pending.delete(reply.id)
    clearTimeout(waiting.timer)
    if (reply.ok === true && reply.info !== undefined) waiting.resolve(reply.info)
    else waiting.reject(new Error(reply.error ?? 'the launcher refused'))
  })

  function ask (action: ControlRequest['action'], target?: string): Promise<ClusterInfo> {
    return new Promise((resolve, reject) => {
      const id = nextId++
      const request: ControlRequest = { type: 'balancer:control', id, action, ...(target === undefined ? {} : { target }) }
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`the launcher did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      timer.unref()
      pending.set(id, { resolve, reject, timer })
      let sent = false
      try {
        sent = channel.send?.(request) ?? false
      } catch {
        sent = false
      }
      if (!sent) {
        pending.delete(id)
        clearTimeout(timer)
        reject(new Error('the launcher is gone'))
      }
    })
  }

  return {
    info: () => ask('info'),
    act: (action, target) => ask(action, target)
  }
}
