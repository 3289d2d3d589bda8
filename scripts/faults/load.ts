import http from 'node:http'

/** One request of a load run: when it started and ended (ms since the run began), and how it went. */
export interface LoadRecord {
  start: number
  end: number
  /** HTTP status, or 0 when no answer came (refused, reset, timed out). */
  status: number
  servedBy: string | null
  /** The 401 reason or the error code, when there is one. */
  detail: string | undefined
  /** Index of the credential used. */
  session: number
}

export interface LoadOptions {
  /** The balancer's URL (loopback only). */
  url: string
  /** Bearer tokens to cycle through, one per request. */
  tokens: readonly string[]
  /** Requests kept in flight at once (each its own keep-alive connection). */
  connections?: number
  /** A hard stop, whatever the caller does: the load never runs longer than this. */
  maxDurationMs?: number
  /** A request unanswered this long counts as failed (status 0, 'timeout'). */
  requestTimeoutMs?: number
  /**
   * Requests per second at most, all connections together (default 200). A fault test
   * measures the system, not a CPU queue: an unbounded loop on a 2-core machine would
   * saturate it and turn every latency bound into a measure of that queue.
   */
  rate?: number
  path?: string
}

export interface Load {
  /** ms since the load began, on the same clock as the records. */
  now (): number
  /** Records so far (the array keeps growing until stop). */
  readonly records: LoadRecord[]
  /** Stops sending, waits for the requests in flight, and returns every record. */
  stop (): Promise<LoadRecord[]>
}

/**
 * A load of `connections` loops, each sending GET /feeds with the next token once its previous
 * answer arrived and its share of `rate` allows. Bounded in rate and time (maxDurationMs), and
 * aimed at one URL the caller gives (127.0.0.1 only: it refuses anything else).
 */
export function startLoad (options: LoadOptions): Load {
  const { url, tokens, connections = 8, maxDurationMs = 60_000, requestTimeoutMs = 5000, rate = 200, path = '/feeds' } = options
  const intervalMs = (connections * 1000) / rate
  const target = new URL(path, url)
  if (target.hostname !== '127.0.0.1' && target.hostname !== 'localhost' && target.hostname !== '[::1]') {
    throw new Error(`load only goes to this machine's loopback, not ${target.hostname}`)
  }
  if (tokens.length === 0) throw new Error('startLoad needs at least one token')
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  const origin = performance.now()
  const now = (): number => performance.now() - origin
  const records: LoadRecord[] = []
  const state = { stopping: false }
  let next = 0
  const hardStop = setTimeout(() => { state.stopping = true }, maxDurationMs)

  function once (session: number): Promise<LoadRecord> {
    return new Promise((resolve) => {
      const start = now()
      let settled = false
      const done = (status: number, servedBy: string | null, detail: string | undefined): void => {
        if (settled) return
        settled = true
        resolve({ start, end: now(), status, servedBy, detail, session })
      }
      const req = http.get(target, { agent, headers: { authorization: `Bearer ${tokens[session] ?? ''}` }, timeout: requestTimeoutMs }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { body += chunk })
        res.on('end', () => {
          const servedBy = res.headers['x-served-by']
          let detail: string | undefined
          if ((res.statusCode ?? 0) >= 400) {
            try {
              const parsed = JSON.parse(body) as { reason?: string, error?: string }
              detail = parsed.reason ?? parsed.error
            } catch {
              detail = 'not JSON'
            }
          }
          done(res.statusCode ?? 0, typeof servedBy === 'string' ? servedBy : null, detail)
        })
        res.on('error', (err: NodeJS.ErrnoException) => { done(0, null, err.code ?? err.message) })
      })
      req.on('timeout', () => { req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })) })
      req.on('error', (err: NodeJS.ErrnoException) => { done(0, null, err.code ?? err.message) })
    })
  }

  async function loop (): Promise<void> {
    while (!state.stopping) {
      const session = next++ % tokens.length
      const record = await once(session)
      records.push(record)
      const wait = intervalMs - (record.end - record.start)
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }
  const loops = Array.from({ length: connections }, async () => await loop())

  return {
    now,
    records,
    async stop () {
      state.stopping = true
      await Promise.all(loops)
      clearTimeout(hardStop)
      agent.destroy()
      return records
    }
  }
}

/** Polls `check` every `everyMs` until it is true or `timeoutMs` passes; resolves to the elapsed ms, or undefined. */
export async function timeUntil (check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 20): Promise<number | undefined> {
  const started = performance.now()
  while (performance.now() - started < timeoutMs) {
    if (await Promise.resolve(check()).catch(() => false)) return performance.now() - started
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return undefined
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
