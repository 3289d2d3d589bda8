import type { Test } from 'tap'
import { startCluster, type Cluster, type ClusterOptions } from '../../scripts/cluster.ts'

/** A real cluster of processes for one test, stopped when the test ends, pass or fail. */
export async function withCluster (t: Test, options: ClusterOptions): Promise<Cluster> {
  const cluster = await startCluster({ logLevel: 'warn', healthIntervalMs: 200, ...options })
  t.teardown(async () => await cluster.stop())
  return cluster
}

export interface Answer {
  status: number
  servedBy: string | null
  body: Record<string, unknown>
  ms: number
}

/** One request through the balancer, with the time it took. */
export async function call (url: string, init: RequestInit = {}): Promise<Answer> {
  const started = performance.now()
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  return {
    status: res.status,
    servedBy: res.headers.get('x-served-by'),
    body: text === '' ? {} : JSON.parse(text) as Record<string, unknown>,
    ms: performance.now() - started
  }
}

export async function login (baseUrl: string, username = 'alice', password = 'wonderland'): Promise<{ token: string, servedBy: string }> {
  const answer = await call(`${baseUrl}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password })
  })
  if (answer.status !== 200) throw new Error(`login failed: ${answer.status} ${JSON.stringify(answer.body)}`)
  return { token: answer.body.token as string, servedBy: answer.body.servedBy as string }
}

export async function feeds (baseUrl: string, token: string): Promise<Answer> {
  return await call(`${baseUrl}/feeds`, { headers: { authorization: `Bearer ${token}` } })
}

/** Sends `count` GET /feeds one after another, so the round robin is exact. */
export async function feedsTimes (baseUrl: string, token: string, count: number): Promise<Answer[]> {
  const answers: Answer[] = []
  for (let i = 0; i < count; i++) answers.push(await feeds(baseUrl, token))
  return answers
}

export function tally (answers: Answer[]): Record<string, Record<number, number>> {
  const byServer: Record<string, Record<number, number>> = {}
  for (const a of answers) {
    const server = a.servedBy ?? 'none'
    byServer[server] ??= {}
    byServer[server][a.status] = (byServer[server][a.status] ?? 0) + 1
  }
  return byServer
}

/** Polls until `check` passes or the time is up; returns whether it passed. */
export async function eventually (check: () => Promise<boolean>, timeoutMs = 5000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  return false
}
