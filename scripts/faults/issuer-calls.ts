// What clients ask the issuer during a fault: logins, and refreshes with the refresh token one of
// them holds, each answer timed. Beside the read load (load.ts), which
// only ever reaches the app servers.

export interface IssuerCall {
  /** ms since the load's origin (the clock `now` gives), like a LoadRecord. */
  start: number
  end: number
  what: 'login' | 'refresh'
  /** HTTP status, or 0 when no answer came. */
  status: number
  /** The body's reason or error, when it is not a 200. */
  detail: string | undefined
}

export interface IssuerCaller {
  readonly calls: IssuerCall[]
  stop (): Promise<IssuerCall[]>
}

/**
 * Logs in as alice every `everyMs`, each login sent without waiting for the last (so a hung
 * issuer holds several, as it would a crowd's), and beside them refreshes one family in turn
 * (a refresh token is good for one use: two at once would be a reuse). Until stopped; 127.0.0.1 only.
 */
export function startIssuerCalls (options: { url: string, now: () => number, everyMs?: number, timeoutMs?: number }): IssuerCaller {
  const { url, now, everyMs = 100, timeoutMs = 15_000 } = options
  if (new URL(url).hostname !== '127.0.0.1') throw new Error(`issuer calls only go to 127.0.0.1, not ${url}`)
  const calls: IssuerCall[] = []
  const state = { stopping: false }
  const inFlight = new Set<Promise<void>>()
  let refreshToken: string | undefined

  async function call (what: IssuerCall['what']): Promise<void> {
    const body = what === 'login' ? { username: 'alice', password: 'wonderland' } : { refreshToken }
    const start = now()
    let status = 0
    let detail: string | undefined
    try {
      const res = await fetch(`${url}${what === 'login' ? '/login' : '/token/refresh'}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) })
      status = res.status
      const parsed = await res.json().catch(() => ({})) as { refreshToken?: string, reason?: string, error?: string }
      if (status === 200 && what === 'refresh') refreshToken = parsed.refreshToken
      else if (status !== 200) detail = parsed.reason ?? parsed.error
    } catch (err) {
      detail = (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message
    }
    calls.push({ start, end: now(), what, status, detail })
  }

  const logins = setInterval(() => {
    const p = call('login').finally(() => { inFlight.delete(p) })
    inFlight.add(p)
  }, everyMs)
  const refreshes = (async () => {
    const first = await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'carol', password: 'lighthouse' }), signal: AbortSignal.timeout(timeoutMs) })
    refreshToken = ((await first.json()) as { refreshToken?: string }).refreshToken
    while (!state.stopping) {
      await call('refresh')
      await new Promise((resolve) => setTimeout(resolve, everyMs))
    }
  })()

  return {
    calls,
    async stop () {
      state.stopping = true
      clearInterval(logins)
      await Promise.all([refreshes, ...inFlight])
      return calls
    }
  }
}
