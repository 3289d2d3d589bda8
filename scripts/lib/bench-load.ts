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

/** Runs autocannon in a child process and resolves with what it measured. */
export async function runLoad (options: LoadOptions, signal?: AbortSignal): Promise<LoadResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'], signal })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString() })
    child.once('error', reject)
    child.once('exit', (code, sig) => {
      if (code !== 0) {
        reject(new Error(`the load generator exited with ${String(code ?? sig)}${err === '' ? '' : `: ${err.trim()}`}`))
        return
      }
      try {
        resolve(JSON.parse(out) as LoadResult)
      } catch {
        reject(new Error(`the load generator printed no result: ${out}${err}`))
      }
    })
  })
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
  const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions
  process.stdout.write(`${JSON.stringify(await main(options))}\n`)
}
