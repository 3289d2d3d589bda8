import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { LoadJob, LoadResult, Tick } from './load-generator.ts'

const ENTRY = fileURLToPath(new URL('./load-generator-process.ts', import.meta.url))

export interface LoadGenerator {
  /** The generator's process id, to tell it apart from the servers'. */
  readonly pid: number | undefined
  /** Runs one job; an abort of `signal` ends it early, and it still resolves with what it measured. */
  run (job: LoadJob, onTick?: (tick: Tick) => void, signal?: AbortSignal): Promise<LoadResult>
  close (): Promise<void>
}

type Message =
  | { id: number, type: 'tick', tick: Tick }
  | { id: number, type: 'done', result: LoadResult }
  | { id: number, type: 'error', message: string }

/** Starts the load generator in a process of its own and hands it jobs one at a time. */
export function startLoadGenerator (): LoadGenerator {
  const child: ChildProcess = fork(ENTRY, [], {
    // No inherited NODE_OPTIONS or test-runner loaders: a plain Node, like the servers.
    execArgv: [],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  let nextId = 0
  const pending = new Map<number, { resolve: (r: LoadResult) => void, reject: (e: Error) => void, onTick: (t: Tick) => void }>()
  let exited = false
  child.on('message', (message: Message) => {
    const job = pending.get(message.id)
    if (job === undefined) return
    if (message.type === 'tick') job.onTick(message.tick)
    else {
      pending.delete(message.id)
      if (message.type === 'done') job.resolve(message.result)
      else job.reject(new Error(`load generator: ${message.message}`))
    }
  })
  child.on('exit', (code, signal) => {
    exited = true
    for (const job of pending.values()) job.reject(new Error(`the load generator exited (${signal ?? `code ${String(code)}`})`))
    pending.clear()
  })
  child.on('error', (err) => {
    for (const job of pending.values()) job.reject(err)
    pending.clear()
  })

  return {
    pid: child.pid,
    async run (job, onTick = () => {}, signal) {
      if (exited) throw new Error('the load generator is not running')
      const id = nextId++
      const stop = (): void => { if (!exited) child.send({ id, type: 'stop' }) }
      try {
        return await new Promise<LoadResult>((resolve, reject) => {
          pending.set(id, { resolve, reject, onTick })
          child.send({ id, job })
          if (signal?.aborted === true) stop()
          signal?.addEventListener('abort', stop, { once: true })
        })
      } finally {
        signal?.removeEventListener('abort', stop)
      }
    },
    async close () {
      if (exited) return
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await gone
      clearTimeout(timer)
    }
  }
}
