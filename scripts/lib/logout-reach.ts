import http from 'node:http'

/** One read of the logged-out session, on the clock of the measurement (ms since it began). */
export interface ReachRecord {
  target: string
  start: number
  end: number
  /** HTTP status; 0 when no answer came. */
  status: number
  servedBy: string | null
}

export interface LogoutReach {
  /** When the logout was sent and answered, on the same clock as the records. */
  logoutSentAt: number
  logoutAnsweredAt: number
  logoutStatus: number
  logoutServedBy: string | null
  records: ReachRecord[]
  /**
   * From the logout's answer to the end of the last read any server accepted that began after
   * the logout was sent (negative: every acceptance ended before the logout was answered);
   * undefined when none was accepted.
   */
  lastAcceptedMs: number | undefined
  /** The same, per server (by x-served-by). */
  lastAcceptedByServer: Record<string, number>
  /** Reads begun after the logout was answered, per server: how many were accepted, how many in all. */
  afterLogout: Record<string, { accepted: number, total: number }>
}

export interface LogoutReachOptions {
  /** Where the reads go: the balancer, or each server's own URL (127.0.0.1 only). */
  targets: readonly string[]
  token: string
  /** Reads in flight at once per target, each loop on its own keep-alive connection. */
  inFlightPerTarget: number
  /** Reading before the logout is sent, and after it is answered. */
  beforeMs: number
  afterMs: number
  /** Sends the logout; resolves to its status and the server that took it. */
  logout: () => Promise<{ status: number, servedBy: string | null }>
}

/**
 * How long a logout takes to reach every server, as a client sees it: reads of the session go on
 * without a pause from before the logout is sent until well after it is answered, and the last
 * one accepted says when the last server heard of it.
 */
export async function measureLogoutReach (options: LogoutReachOptions): Promise<LogoutReach> {
  const { targets, token, inFlightPerTarget, beforeMs, afterMs } = options
  for (const target of targets) {
    const host = new URL(target).hostname
    if (host !== '127.0.0.1' && host !== 'localhost') throw new Error(`reads go to this machine's loopback only, not ${host}`)
  }
  const origin = performance.now()
  const now = (): number => performance.now() - origin
  const records: ReachRecord[] = []
  let stopAt = Infinity
  const agents = targets.map(() => new http.Agent({ keepAlive: true, maxSockets: inFlightPerTarget }))

  const read = async (target: string, agent: http.Agent): Promise<ReachRecord> => await new Promise((resolve) => {
    const start = now()
    const done = (status: number, servedBy: string | null): void => { resolve({ target, start, end: now(), status, servedBy }) }
    const req = http.get(new URL('/feeds', target), { agent, headers: { authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      res.resume()
      res.on('end', () => { done(res.statusCode ?? 0, typeof res.headers['x-served-by'] === 'string' ? res.headers['x-served-by'] : null) })
      res.on('error', () => { done(0, null) })
    })
    req.on('timeout', () => { req.destroy(new Error('timeout')) })
    req.on('error', () => { done(0, null) })
  })
  const loops = targets.flatMap((target, i) => Array.from({ length: inFlightPerTarget }, async () => {
    while (now() < stopAt) records.push(await read(target, agents[i] as http.Agent))
  }))

  await new Promise((resolve) => setTimeout(resolve, beforeMs))
  const logoutSentAt = now()
  const logout = await options.logout()
  const logoutAnsweredAt = now()
  stopAt = logoutAnsweredAt + afterMs
  await Promise.all(loops)
  for (const agent of agents) agent.destroy()

  const accepted = records.filter((r) => r.status === 200 && r.start >= logoutSentAt)
  const lastAcceptedByServer: Record<string, number> = {}
  for (const r of accepted) {
    const server = r.servedBy ?? '?'
    lastAcceptedByServer[server] = Math.max(lastAcceptedByServer[server] ?? -Infinity, r.end - logoutAnsweredAt)
  }
  const afterLogout: Record<string, { accepted: number, total: number }> = {}
  for (const r of records.filter((r) => r.start >= logoutAnsweredAt)) {
    const counts = afterLogout[r.servedBy ?? '?'] ??= { accepted: 0, total: 0 }
    counts.total++
    if (r.status === 200) counts.accepted++
  }
  return {
    logoutSentAt,
    logoutAnsweredAt,
    logoutStatus: logout.status,
    logoutServedBy: logout.servedBy,
    records,
    lastAcceptedMs: accepted.length === 0 ? undefined : Math.max(...accepted.map((r) => r.end - logoutAnsweredAt)),
    lastAcceptedByServer,
    afterLogout
  }
}

/** POST /logout with the token to `url`, as measureLogoutReach's `logout`. */
export async function logoutAt (url: string, token: string): Promise<{ status: number, servedBy: string | null }> {
  const res = await fetch(`${url}/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
  await res.arrayBuffer()
  return { status: res.status, servedBy: res.headers.get('x-served-by') }
}
