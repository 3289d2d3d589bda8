import type { Answer } from './client.ts'

/** How a set of answers ended, per server. */
export interface Tally {
  total: number
  ok: number
  refused: number
  failed: number
  byServer: Record<string, { ok: number, refused: number, failed: number }>
  /** The distinct servers that answered, in order of first answer. */
  servers: string[]
  /** The distinct refusal or failure reasons. */
  reasons: string[]
}

export function tally (answers: Answer[]): Tally {
  const t: Tally = { total: answers.length, ok: 0, refused: 0, failed: 0, byServer: {}, servers: [], reasons: [] }
  for (const a of answers) {
    const outcome = a.status >= 500 ? 'failed' : a.status >= 400 ? 'refused' : 'ok'
    t[outcome]++
    const server = a.servedBy ?? 'balancer'
    if (!t.servers.includes(server)) t.servers.push(server)
    const counts = t.byServer[server] ??= { ok: 0, refused: 0, failed: 0 }
    counts[outcome]++
    if (a.reason !== null && a.reason !== '' && !t.reasons.includes(a.reason)) t.reasons.push(a.reason)
  }
  return t
}

/** The servers that refused (or failed) every one of these answers they got. */
export const refusers = (t: Tally): string[] => t.servers.filter((s) => (t.byServer[s]?.ok ?? 0) === 0)

export function median (values: number[]): number | undefined {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}
