// One autocannon run in a process of its own, never in a server's or a
// proxy's process (fastify/benchmarks): `runLoad()` spawns this file, which
// drives the load and prints one JSON line with the result.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

export interface LoadOptions {
  url: string
  connections: number
  durationSeconds: number
  headers?: Record<string, string>
  /** Seconds a request may wait for its answer before it counts as a timeout (an error). */
  timeoutSeconds?: number
}

export interface LoadResult {
  /** Responses received, any status. */
  requests: number
  /** Seconds the load actually ran. */
  durationSeconds: number
  /** requests / durationSeconds */
  rps: number
  /**
   * Percentiles of the 2xx responses' latency. autocannon's own histogram
   * keeps whole milliseconds, too coarse to compare 2 ms with 3 ms, so every
   * response time is kept here at full (sub-microsecond) precision.
   */
  latencyMs: { p50: number, p90: number, p99: number, max: number }
  ok: number
  non2xx: number
  /** Socket errors, timeouts included, as autocannon counts them. */
  errors: number
  timeouts: number
}

const SELF = fileURLToPath(import.meta.url)

/**
 * The load generator: one child process for a whole bench run, driven over
 * IPC, so each measurement does not pay for a Node start (seconds on a busy
 * machine). It never shares a process with a server or a proxy.
 */
export interface LoadGenerator {
  run (options: LoadOptions): Promise<LoadResult>
  /** Ends the child process; safe to call twice. */
  close (): void
}

export function startLoadGenerator (signal?: AbortSignal): LoadGenerator {
  const child = spawn(process.execPath, [SELF], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], signal })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000) })
  child.on('error', () => {}) // an abort; the run in flight rejects through 'exit'
  let pending: { resolve: (r: LoadResult) => void, reject: (e: Error) => void } | undefined
  let exited = false
  child.on('message', (message: { result?: LoadResult, error?: string }) => {
    const p = pending
    pending = undefined
    if (message.result !== undefined) p?.resolve(message.result)
    else p?.reject(new Error(`the load generator failed: ${message.error ?? 'no result'}`))
  })
  child.once('exit', (code, sig) => {
    exited = true
    pending?.reject(new Error(`the load generator exited with ${String(code ?? sig)}${stderr === '' ? '' : `: ${stderr.trim()}`}`))
    pending = undefined
  })
  return {
    async run (options) {
      if (exited) throw new Error('the load generator has exited')
      if (pending !== undefined) throw new Error('one load at a time')
      return await new Promise((resolve, reject) => {
        pending = { resolve, reject }
        child.send(options)
      })
    },
    close () {
      if (!exited) child.kill()
    }
  }
}

/** One load in a child process of its own, started for it and ended after it. */
export async function runLoad (options: LoadOptions, signal?: AbortSignal): Promise<LoadResult> {
  const generator = startLoadGenerator(signal)
  try {
    return await generator.run(options)
  } finally {
    generator.close()
  }
}

/** The q-quantile (0..1) of ascending-sorted values, nearest rank. */
export function quantile (sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] as number
}

async function main (options: LoadOptions): Promise<LoadResult> {
  let latencies = new Float64Array(1 << 16)
  let count = 0
  // Without a callback autocannon returns its event emitter, made thenable;
  // the types know only one side of it.
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    headers: options.headers,
    timeout: options.timeoutSeconds ?? 10
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>
  instance.on('response', (_client: autocannon.Client, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode < 200 || statusCode > 299) return
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2)
      grown.set(latencies)
      latencies = grown
    }
    latencies[count++] = responseTime
  })
  const result = await instance
  const sorted = latencies.subarray(0, count).sort()
  const round = (ms: number): number => Math.round(ms * 1000) / 1000
  return {
    requests: result.requests.total,
    durationSeconds: result.duration,
    rps: Math.round(result.requests.total / result.duration),
    latencyMs: {
      p50: round(quantile(sorted, 0.5)),
      p90: round(quantile(sorted, 0.9)),
      p99: round(quantile(sorted, 0.99)),
      max: round(quantile(sorted, 1))
    },
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts
  }
}

if (import.meta.main) {
  // Driven by the parent over IPC: one message per load, one answer each.
  process.on('message', (options: LoadOptions) => {
    main(options).then(
      (result) => { process.send?.({ result }) },
      (err: unknown) => { process.send?.({ error: err instanceof Error ? err.message : String(err) }) }
    )
  })
  process.on('disconnect', () => { process.exit(0) })
}
