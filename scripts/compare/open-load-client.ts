import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { OpenLoadJob, OpenLoadResult } from './open-load.ts'

const ENTRY = fileURLToPath(new URL('./open-load-process.ts', import.meta.url))

export interface OpenLoadGenerator {
  /** The generator's process id, to tell its CPU apart from the servers'. */
  readonly pid: number | undefined
  run (job: OpenLoadJob): Promise<OpenLoadResult>
  close (): Promise<void>
}

type Message = { id: number, type: 'done', result: OpenLoadResult } | { id: number, type: 'error', message: string }

/** Starts the open-model generator in a process of its own (as load-client.ts does autocannon's). */
export function startOpenLoadGenerator (): OpenLoadGenerator {
  const child: ChildProcess = fork(ENTRY, [], {
    // No inherited NODE_OPTIONS or test-runner loaders: a plain Node, like the servers.
    execArgv: [],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  let nextId = 0
  const pending = new Map<number, { resolve: (r: OpenLoadResult) => void, reject: (e: Error) => void }>()
  let exited = false
  const failAll = (err: Error): void => {
    for (const job of pending.values()) job.reject(err)
    pending.clear()
  }
  child.on('message', (message: Message) => {
    const job = pending.get(message.id)
    if (job === undefined) return
    pending.delete(message.id)
    if (message.type === 'done') job.resolve(message.result)
    else job.reject(new Error(`open-model load generator: ${message.message}`))
  })
  child.on('exit', (code, signal) => {
    exited = true
    failAll(new Error(`the open-model load generator exited (${signal ?? `code ${String(code)}`})`))
  })
  child.on('error', failAll)

  return {
    pid: child.pid,
    async run (job) {
      if (exited) throw new Error('the open-model load generator is not running')
      const id = nextId++
      return await new Promise<OpenLoadResult>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        child.send({ id, job })
      })
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
